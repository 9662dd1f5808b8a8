"""The benchmark suite (benchmarks/): its arithmetic, its README section, peer detection, and one
end-to-end run through the command line with tiny sizes. Nothing here asserts on speed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks import cli
from benchmarks.cases import BARE, SERIAL, Row, Unit
from benchmarks.harness import (
    Bar,
    NotApplicable,
    Samples,
    measure_alternating,
    ratio,
    rotations,
    speed_up_and_efficiency,
    verdict,
)
from benchmarks.report import (
    END_MARKER,
    README,
    START_MARKER,
    MissingMarker,
    RowResult,
    RunInfo,
    describe,
    replace_section,
    table,
    write_readme,
)
from benchmarks.targets import MultiprocessingApi, accepts_buffersize, installed

ROOT = Path(__file__).resolve().parent.parent


# --- arithmetic: medians, ratios, efficiency, the bars (pure, no processes) ----------------


def test_median_of_odd_and_even_counts_and_of_nothing() -> None:
    samples = Samples(values={"odd": [3.0, 1.0, 2.0], "even": [4.0, 1.0, 3.0, 2.0]})
    assert samples.median("odd") == 2.0
    assert samples.median("even") == 2.5
    assert samples.median("absent") is None


def test_ratio_is_refpool_over_stdlib_and_missing_when_either_is() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None
    assert ratio(3.0, None) is None
    assert ratio(3.0, 0.0) is None


def test_speed_up_and_efficiency_against_two_workers() -> None:
    assert speed_up_and_efficiency(2.0, 1.0) == (2.0, 1.0)
    speed_up, efficiency = speed_up_and_efficiency(2.0, 1.25)
    assert speed_up == pytest.approx(1.6)
    assert efficiency == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("bar", "value", "expected"),
    [
        (Bar.TIME_RATIO, 0.5, "meets"),
        (Bar.TIME_RATIO, 1.10, "meets"),
        (Bar.TIME_RATIO, 1.104, "meets"),  # printed as 1.10: judged as printed
        (Bar.TIME_RATIO, 1.106, "misses"),  # printed as 1.11
        (Bar.TIME_RATIO, 3.0, "misses"),
        (Bar.EFFICIENCY, 0.95, "meets"),
        (Bar.EFFICIENCY, 0.90, "meets"),
        (Bar.EFFICIENCY, 0.896, "meets"),  # printed as 0.90
        (Bar.EFFICIENCY, 0.894, "misses"),
        (Bar.TIME_RATIO, None, "-"),
        (Bar.INFORMATIONAL, 5.0, "informational"),
    ],
)
def test_verdict_against_the_bars(bar: Bar, value: float | None, expected: str) -> None:
    assert verdict(bar, value) == expected


def test_rotations_run_everyone_once_per_repetition_starting_with_someone_else() -> None:
    orders = list(rotations(["a", "b", "c"], 4))
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_measure_alternating_collects_samples_in_rotation() -> None:
    calls: list[str] = []

    def participant(name: str, value: float) -> Callable[[], float]:
        def run() -> float:
            calls.append(name)
            return value

        return run

    samples = measure_alternating({"x": participant("x", 1.0), "y": participant("y", 2.0)}, repeat=3)
    assert calls == ["x", "y", "y", "x", "x", "y"]
    assert samples.values == {"x": [1.0, 1.0, 1.0], "y": [2.0, 2.0, 2.0]}
    assert samples.missing == {} and samples.failed == []


def test_not_applicable_is_asked_once_and_a_failure_drops_its_samples() -> None:
    asked: list[str] = []
    broken_calls = 0

    def not_applicable() -> float:
        asked.append("n/a")
        raise NotApplicable("has no such thing")

    def breaks_second_time() -> float:
        nonlocal broken_calls
        broken_calls += 1
        if broken_calls == 2:
            raise RuntimeError("boom")
        return 1.0

    samples = measure_alternating({"fine": lambda: 1.0, "na": not_applicable, "bad": breaks_second_time}, 3)
    assert asked == ["n/a"]
    assert samples.missing["na"] == "has no such thing"
    assert samples.failed == ["bad"]
    assert "bad" not in samples.values
    assert samples.missing["bad"] == "failed: RuntimeError: boom"
    assert samples.values["fine"] == [1.0, 1.0, 1.0]


# --- the table: ratio column, bar marking, footnotes -----------------------------------------


def _never() -> float:
    raise AssertionError("the table does not measure")


def _row(case: int, bar: Bar, unit: Unit = Unit.SECONDS, baselines: bool = False) -> Row:
    """A row as the table sees it; `baselines`: with case 5's serial run and bare processes."""
    serial = bare = _never if baselines else None
    return Row(case, f"{case}. a case", 1, lambda target: _never(), unit, bar, serial=serial, bare=bare)


def _table_lines(text: str) -> list[list[str]]:
    """The cells of every line of the table, header and rule included."""
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|")
    ]


def _cells(text: str, label_start: str) -> list[str]:
    """The cells of the first table line whose label starts with `label_start`."""
    for cells in _table_lines(text):
        if cells[0].startswith(label_start):
            return cells
    raise AssertionError(f"no line {label_start!r} in:\n{text}")


def test_table_marks_time_ratios_and_footnotes_missing_cells() -> None:
    fast = Samples(values={"refpool": [1.0], "stdlib": [1.0], "peer": [0.5]})
    slow = Samples(values={"refpool": [0.3], "stdlib": [0.1]}, missing={"peer": "peer has none"})
    text = table(
        [RowResult(_row(2, Bar.TIME_RATIO), fast), RowResult(_row(3, Bar.TIME_RATIO), slow)],
        ["refpool", "stdlib", "peer"],
    )
    assert _cells(text, "2.") == ["2. a case", "1.00 s", "1.00 s", "500.0 ms", "1.00", "meets"]
    assert _cells(text, "3.") == ["3. a case", "300.0 ms", "100.0 ms", "n/a [a]", "3.00", "misses"]
    assert "- [a] peer has none" in text


def test_table_judges_case_5_by_efficiency_over_the_serial_run() -> None:
    row = _row(5, Bar.EFFICIENCY, baselines=True)
    samples = Samples(values={"refpool": [1.1], "stdlib": [1.0], SERIAL: [2.0], BARE: [1.0]})
    text = table([RowResult(row, samples)], ["refpool", "stdlib"])
    assert _cells(text, "5. a case")[-2:] == ["1.10", "see next line"]
    efficiency = _cells(text, "5. speed-up")
    assert efficiency[1:] == ["1.82x, 0.91", "2.00x, 1.00", "-", "meets"]
    assert "2 bare processes, no pool: 2.00x" in efficiency[0]


def test_table_marks_case_6_informational() -> None:
    samples = Samples(values={"refpool": [200.0], "stdlib": [100.0]})
    text = table([RowResult(_row(6, Bar.INFORMATIONAL, Unit.MIB), samples)], ["refpool", "stdlib"])
    assert _cells(text, "6.") == ["6. a case", "200 MiB", "100 MiB", "2.00", "informational"]


# --- the README section ----------------------------------------------------------------------

BEFORE = "# Title\n\nHand-written text, kept.\n\n"
AFTER = "\n\n## After\n\nAlso kept.\n"


def test_replace_section_keeps_the_markers_and_everything_outside_them() -> None:
    text = f"{BEFORE}{START_MARKER}\nold results\n{END_MARKER}{AFTER}"
    replaced = replace_section(text, "new results")
    assert replaced == f"{BEFORE}{START_MARKER}\nnew results\n{END_MARKER}{AFTER}"
    assert replace_section(replaced, "new results") == replaced  # rewriting twice changes nothing


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (f"{BEFORE}{END_MARKER}{AFTER}", f"has no marker {START_MARKER}"),
        (f"{BEFORE}{START_MARKER}{AFTER}", f"has no marker {END_MARKER}"),
        (f"{START_MARKER}{START_MARKER}{END_MARKER}", f"has 2 times the marker {START_MARKER}"),
        (f"{END_MARKER}x{START_MARKER}", "before"),
    ],
)
def test_replace_section_refuses_a_readme_without_exactly_one_pair_of_markers(
    text: str, complaint: str
) -> None:
    with pytest.raises(MissingMarker, match=re.escape(complaint)):
        replace_section(text, "new results")


def test_write_readme_rewrites_only_the_section(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEFORE}{START_MARKER}\nold\n{END_MARKER}{AFTER}", encoding="utf-8")
    write_readme(_info(), "| the | table |", readme)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith(BEFORE + START_MARKER + "\n- Command:")
    assert text.endswith("| the | table |\n" + END_MARKER + AFTER)


def test_the_suites_own_readme_has_the_markers() -> None:
    text = README.read_text(encoding="utf-8")
    assert text.count(START_MARKER) == 1 and text.count(END_MARKER) == 1


# --- peers -----------------------------------------------------------------------------------


def _info(left_out: list[str] | None = None) -> RunInfo:
    return RunInfo(
        date="today",
        command="python -m benchmarks",
        mode="full",
        repetitions="5",
        machine="a machine",
        python="3.11",
        versions={"refpool": "0.1.0"},
        left_out=left_out or [],
    )


def test_a_peer_that_cannot_be_imported_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "loky", None)  # import loky now raises ImportError
    present, absent = installed(["refpool", "stdlib", "loky"])
    assert [info.name for info in present] == ["refpool", "stdlib"]
    assert absent == ["loky"]
    assert "- Not installed, left out: loky" in describe(_info(left_out=absent))
    assert not any("left out" in line for line in describe(_info()))


def test_the_command_line_refuses_unknown_cases_and_targets(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--cases", "8"]) == 2
    assert cli.main(["--cases", "two"]) == 2
    assert cli.main(["--targets", "refpool,nosuchpool"]) == 2
    assert "nosuchpool" in capsys.readouterr().err


class _FakePool:
    """Records what an adapter asks of a multiprocessing-style pool; starts nothing."""

    def __init__(self) -> None:
        self.asked: list[dict[str, object]] = []

    def imap(
        self, func: object, iterable: list[int], chunksize: int = 1, buffersize: int | None = None
    ) -> list[int]:
        self.asked.append({"chunksize": chunksize, "buffersize": buffersize})
        return list(iterable)


class _OlderFakePool:
    def imap(self, func: object, iterable: list[int], chunksize: int = 1) -> list[int]:
        return list(iterable)


def test_imap_with_buffersize_is_passed_on_or_not_applicable() -> None:
    assert accepts_buffersize(_FakePool().imap) and not accepts_buffersize(_OlderFakePool().imap)
    fake = _FakePool()
    adapter = MultiprocessingApi("fake", lambda method: fake, lambda: fake)
    adapter.start("fork")
    assert list(adapter.imap(abs, [1, 2], 2, buffersize=64)) == [1, 2]
    assert fake.asked == [{"chunksize": 2, "buffersize": 64}]
    older = MultiprocessingApi("older", lambda method: _OlderFakePool(), _OlderFakePool)
    older.start("fork")
    assert list(older.imap(abs, [3], 1)) == [3]
    with pytest.raises(NotApplicable, match="older has no buffersize yet"):
        older.imap(abs, [3], 1, buffersize=64)


# --- end to end: the command line, tiny sizes, refpool and the stdlib ------------------------

TIME = re.compile(r"^(\d[\d,]*\.\d+) (ms|s)$")
MIB = re.compile(r"^(\d[\d,]*(?:\.\d+)?) MiB$")


def _positive(cell: str, unit: re.Pattern[str]) -> bool:
    found = unit.match(cell)
    return found is not None and float(found.group(1).replace(",", "")) > 0


def test_the_suite_runs_every_case_through_its_command_line(tmp_path: Path) -> None:
    # A loky that cannot be imported, whether or not the real one is installed.
    (tmp_path / "loky.py").write_text("raise ImportError('hidden by the test')\n", encoding="utf-8")
    raw = tmp_path / "raw.json"
    command = [sys.executable, "-m", "benchmarks", "--scale", "0.01", "--repeat", "1"]
    command += ["--targets", "refpool,stdlib,loky", "--json", str(raw)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    run = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=50)
    assert run.returncode == 0, run.stderr

    assert "- Not installed, left out: loky" in run.stdout
    header = _cells(run.stdout, "case")
    assert header == ["case", "refpool", "stdlib", "refpool/stdlib", "bar"]
    # One line per row measured; not case 5's efficiency line, case 6's buffersize line,
    # nor the floor lines of cases 3 and 4.
    measured = [
        cells
        for cells in _table_lines(run.stdout)
        if re.match(r"\d\. (?!the same|speed-up|the floor)", cells[0])
    ]
    assert [cells[0][:2] for cells in measured] == ["1.", "1.", "2.", "2.", "3.", "4.", "5.", "6.", "7."]
    for cells in measured:
        unit = MIB if cells[0].startswith("6.") else TIME
        assert _positive(cells[1], unit) and _positive(cells[2], unit), cells
        assert re.fullmatch(r"\d+\.\d\d", cells[3]), cells
        assert cells[4] in {"meets", "misses", "informational", "see next line"}, cells
    assert re.fullmatch(r"\d+\.\d\dx, \d+\.\d\d", _cells(run.stdout, "5. speed-up")[1])
    for case in ("3.", "4."):
        floor = _cells(run.stdout, f"{case} the floor")
        assert re.search(r"no pool: \d+\.\d (ms|s)$", floor[0]), floor
        assert re.fullmatch(r"\d+\.\d\d", floor[3]), floor

    rows = json.loads(raw.read_text(encoding="utf-8"))["rows"]
    assert sorted({row["case"] for row in rows}) == [1, 2, 3, 4, 5, 6, 7]
    for row in rows:
        assert all(value > 0 for values in row["samples"].values() for value in values), row
