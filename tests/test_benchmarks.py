"""The benchmark suite (benchmarks/): its arithmetic, its README section, peer detection, and one
end-to-end run through the command line with tiny sizes. Nothing here asserts on speed."""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing.pool
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import refpool
from benchmarks import cases, cli
from benchmarks.cases import (
    BARE,
    FULL,
    LEAST_ANSWER_SECONDS,
    LEAST_LONG_TASK_SECONDS,
    QUICK,
    SERIAL,
    SHORT_TASK_SECONDS,
    Row,
    Sizes,
    Unit,
    WrongResult,
    check_short_jobs,
    failure_after_kill,
    shorter_rss_input,
)
from benchmarks.harness import (
    Bar,
    Misbehaved,
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
    bars_line,
    describe,
    replace_section,
    table,
    write_readme,
)
from benchmarks.targets import (
    Getter,
    MultiprocessingApi,
    accepts_buffersize,
    async_result_getter,
    future_getter,
    installed,
)

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
        (Bar.STRICT_TIME_RATIO, 0.5, "meets"),
        (Bar.STRICT_TIME_RATIO, 1.004, "meets"),  # printed as 1.00
        (Bar.STRICT_TIME_RATIO, 1.006, "misses"),  # printed as 1.01
        (Bar.STRICT_TIME_RATIO, 1.10, "misses"),  # meets the 1.10 bar, not this one
        (Bar.EFFICIENCY, 0.95, "meets"),
        (Bar.EFFICIENCY, 0.90, "meets"),
        (Bar.EFFICIENCY, 0.896, "meets"),  # printed as 0.90
        (Bar.EFFICIENCY, 0.894, "misses"),
        (Bar.ONE_JOB_FAILS, 0.002, "meets"),  # a value: one job failed, promptly
        (Bar.ONE_JOB_FAILS, None, "-"),
        (Bar.TIME_RATIO, None, "-"),
        (Bar.INFORMATIONAL, 5.0, "informational"),
    ],
)
def test_verdict_against_the_bars(bar: Bar, value: float | None, expected: str) -> None:
    assert verdict(bar, value) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.02, "meets"),
        (1.494, "meets"),  # printed as 1.49 s
        (1.496, "misses"),  # printed as 1.50 s: not below the 1.5 s task
        (1.6, "misses"),  # the no-ops waited behind the long task
        (None, "-"),
    ],
)
def test_verdict_of_case_10_is_refpools_time_below_the_long_task(
    seconds: float | None, expected: str
) -> None:
    assert verdict(Bar.BEFORE_LONG_TASK, seconds, limit=1.5) == expected


def test_bars_line_names_every_bar_with_its_cases() -> None:
    line = bars_line()
    assert "cases 1, 2 and 7 refpool/stdlib time <= 1.10" in line
    assert "cases 3, 4, 8 and 9 refpool/stdlib time <= 1.00" in line
    assert "case 5 efficiency >= 0.90" in line
    assert f"case 10 {Bar.BEFORE_LONG_TASK.value}" in line
    assert f"case 11 {Bar.ONE_JOB_FAILS.value}" in line


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


def test_a_pool_that_misbehaves_gets_its_status_is_asked_no_more_and_has_not_failed() -> None:
    calls = 0

    def hangs_second_time() -> float:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Misbehaved("hangs", "no answer 5 s after the kill")
        return 1.0

    samples = measure_alternating({"fine": lambda: 1.0, "hanging": hangs_second_time}, 4)
    assert calls == 2
    assert samples.statuses == {"hanging": "hangs"}
    assert samples.missing == {"hanging": "no answer 5 s after the kill"}
    assert "hanging" not in samples.values  # a status, never a median beside it
    assert samples.failed == []


# --- the table: ratio column, bar marking, footnotes -----------------------------------------


def _never() -> float:
    raise AssertionError("the table does not measure")


def _row(
    case: int, bar: Bar, unit: Unit = Unit.SECONDS, baselines: bool = False, limit: float | None = None
) -> Row:
    """A row as the table sees it; `baselines`: with case 5's serial run and bare processes."""
    serial = bare = _never if baselines else None
    return Row(
        case, f"{case}. a case", 1, lambda target: _never(), unit, bar, serial=serial, bare=bare, limit=limit
    )


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


def test_case_6_runs_refpool_with_buffersize_over_its_input_and_a_tenth_of_it() -> None:
    """A bounded imap's peak RSS does not grow with the input: two lengths show the flat line."""
    assert [shorter_rss_input(n) for n in (FULL.rss_items, QUICK.rss_items, 5_000)] == [200_000, 5_000, 1_000]
    (row,) = cases.rss_rows(FULL, 1)
    assert [(v.name, v.label, v.compared) for v in row.variants] == [
        ("refpool, buffersize=64", "the same, refpool, buffersize=64", True),
        (
            "refpool, buffersize=64, 200,000 items",
            "the same over 200,000 items, refpool, buffersize=64",
            False,
        ),
    ]
    assert "2,000,000 items" in row.label

    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

    with_refpool = row.participants([Named("refpool"), Named("stdlib")])  # type: ignore[list-item]
    assert list(with_refpool) == ["refpool", "stdlib", *(v.name for v in row.variants)]
    assert list(row.participants([Named("stdlib")])) == ["stdlib"]  # type: ignore[list-item]


def test_table_shows_case_6s_buffersize_lines_compared_with_the_stdlib_only_over_the_same_input() -> None:
    (row,) = cases.rss_rows(QUICK, 1)
    samples = Samples(
        values={
            "refpool": [500.0],
            "stdlib": [400.0],
            "refpool, buffersize=64": [20.0],
            "refpool, buffersize=64, 5,000 items": [19.0],
        }
    )
    text = table([RowResult(row, samples)], ["refpool", "stdlib"])
    assert _cells(text, "6. parent")[1:] == ["500 MiB", "400 MiB", "1.25", "informational"]
    assert _cells(text, "6. the same, refpool") == [
        "6. the same, refpool, buffersize=64",
        "20.0 MiB",
        "-",
        "0.05",
        "informational",
    ]
    assert _cells(text, "6. the same over") == [
        "6. the same over 5,000 items, refpool, buffersize=64",
        "19.0 MiB",
        "-",
        "-",
        "informational",
    ]
    # A refpool without buffersize: both lines say so, with one footnote.
    missing = Samples(
        values={"refpool": [500.0], "stdlib": [400.0]},
        missing={name: "refpool has no buffersize yet" for name in samples.values if "buffersize" in name},
    )
    text = table([RowResult(row, missing)], ["refpool", "stdlib"])
    assert _cells(text, "6. the same, refpool")[1] == "n/a [a]"
    assert _cells(text, "6. the same over")[1] == "n/a [a]"
    assert text.count("- [a] refpool has no buffersize yet") == 1
    # Without refpool in the run, no buffersize line at all.
    text = table([RowResult(row, Samples(values={"stdlib": [400.0]}))], ["stdlib"])
    assert not any(cells[0].startswith("6. the same") for cells in _table_lines(text))


def test_table_judges_cases_3_4_8_and_9_by_the_strict_ratio() -> None:
    samples = Samples(values={"refpool": [1.05], "stdlib": [1.0]})
    text = table([RowResult(_row(8, Bar.STRICT_TIME_RATIO), samples)], ["refpool", "stdlib"])
    assert _cells(text, "8.")[-2:] == ["1.05", "misses"]


def test_table_judges_case_10_by_refpools_own_time_against_the_long_task() -> None:
    row = _row(10, Bar.BEFORE_LONG_TASK, limit=1.5)
    quick = Samples(values={"refpool": [0.04], "stdlib": [0.02]})
    behind = Samples(values={"refpool": [1.52], "stdlib": [0.02]})
    text = table([RowResult(row, quick)], ["refpool", "stdlib"])
    assert _cells(text, "10.") == ["10. a case", "40.0 ms", "20.0 ms", "2.00", "meets"]
    text = table([RowResult(row, behind)], ["refpool", "stdlib"])
    assert _cells(text, "10.")[1:] == ["1.52 s", "20.0 ms", "76.00", "misses"]


def test_table_shows_hangs_and_fails_with_footnotes_and_judges_case_11_by_refpools_value() -> None:
    samples = Samples(
        values={"refpool": [0.002]},
        missing={"stdlib": "no answer 5 s after the kill", "peer": "all of them failed"},
        statuses={"stdlib": "hangs", "peer": "fails 1,001 of 1,001"},
    )
    text = table([RowResult(_row(11, Bar.ONE_JOB_FAILS), samples)], ["refpool", "stdlib", "peer"])
    cells = ["11. a case", "2.0 ms", "hangs [a]", "fails 1,001 of 1,001 [b]", "-", "meets"]
    assert _cells(text, "11.") == cells
    assert "- [a] no answer 5 s after the kill" in text
    assert "- [b] all of them failed" in text


def test_refpool_with_a_status_misses_any_bar() -> None:
    samples = Samples(
        values={"stdlib": [0.01]}, missing={"refpool": "it hung"}, statuses={"refpool": "hangs"}
    )
    for row in (_row(10, Bar.BEFORE_LONG_TASK, limit=1.5), _row(11, Bar.ONE_JOB_FAILS)):
        text = table([RowResult(row, samples)], ["refpool", "stdlib"])
        assert _cells(text, row.label)[1:] == ["hangs [a]", "10.0 ms", "-", "misses"]


# --- case 11's verdicts on one run: which jobs failed, which hung (pure, fake getters) -------


def _returns(value: object) -> Getter:
    return lambda timeout: value


def _raises(error: BaseException) -> Getter:
    def get(timeout: float) -> object:
        raise error

    return get


def test_the_killed_job_must_raise_and_is_timed_until_it_does() -> None:
    assert failure_after_kill(_raises(OSError("worker lost")), 5.0) >= 0.0
    with pytest.raises(Misbehaved) as hung:
        failure_after_kill(_raises(TimeoutError()), 5.0)
    assert (hung.value.status, hung.value.reason) == ("hangs", "no answer 5 s after the kill")
    with pytest.raises(WrongResult):
        failure_after_kill(_returns(None), 5.0)


def test_every_short_job_must_succeed() -> None:
    check_short_jobs([_returns(SHORT_TASK_SECONDS)] * 3, 5.0)  # nothing to say
    with pytest.raises(Misbehaved) as more_failed:
        check_short_jobs([_raises(OSError("broken")), _returns(SHORT_TASK_SECONDS), _raises(OSError())], 5.0)
    assert more_failed.value.status == "fails 3 of 4"
    assert "2 of the 3 jobs queued behind it (OSError)" in more_failed.value.reason
    with pytest.raises(Misbehaved) as hung:
        check_short_jobs([_raises(TimeoutError()), _raises(OSError())], 5.0)
    assert hung.value.status == "hangs"  # a hang outweighs a failure
    with pytest.raises(WrongResult):
        check_short_jobs([_returns("something else")], 5.0)


def test_scale_shortens_the_long_task_and_the_waits_down_to_their_least() -> None:
    tiny = FULL.scaled(0.01)
    assert (tiny.noops, tiny.short_tasks) == (3, 10)
    assert tiny.long_task_seconds == LEAST_LONG_TASK_SECONDS
    assert tiny.answer_seconds == LEAST_ANSWER_SECONDS
    assert FULL.scaled(1.0) == FULL


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
    assert cli.main(["--cases", "12"]) == 2
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


def test_a_pool_that_hangs_or_fails_jobs_is_no_error_of_the_suite(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def misbehaves(target: Any) -> float:
        raise Misbehaved("hangs" if target.name == "stdlib" else "fails 2 of 2", f"{target.name} did")

    def fake_case(sizes: Sizes, spin_loops: int) -> list[Row]:
        return [Row(12, "12. a case that finds fault with every pool", 1, misbehaves)]

    monkeypatch.setitem(cases.CASES, 12, fake_case)
    assert cli.main(["--cases", "12", "--targets", "refpool,stdlib"]) == 0
    assert _cells(capsys.readouterr().out, "12.")[1:] == ["fails 2 of 2 [a]", "hangs [b]", "-", "misses"]


def test_the_getters_return_the_value_raise_the_tasks_error_or_the_builtin_timeout() -> None:
    release = threading.Event()
    with multiprocessing.pool.ThreadPool(2) as stdlib, concurrent.futures.ThreadPoolExecutor(2) as executor:

        def through_async_result(fn: Callable[..., Any], *args: Any) -> Getter:
            return async_result_getter(stdlib.apply_async(fn, args))

        def through_future(fn: Callable[..., Any], *args: Any) -> Getter:
            return future_getter(executor.submit(fn, *args))

        for submit in (through_async_result, through_future):
            assert submit(abs, -3)(5.0) == 3
            with pytest.raises(ZeroDivisionError):
                submit(divmod, 1, 0)(5.0)
            with pytest.raises(TimeoutError):  # not multiprocessing.TimeoutError, not futures'
                submit(release.wait, 5.0)(0.01)
        release.set()


def test_the_multiprocessing_adapter_submits_one_call_and_terminates() -> None:
    adapter = MultiprocessingApi("refpool", lambda method: _never(), lambda: refpool.ThreadPool(2))
    adapter.start("thread")
    assert adapter.submit(divmod, 7, 2)(5.0) == (3, 1)
    adapter.terminate()


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
    lines = _table_lines(run.stdout)
    assert not any("floor" in cells[0] for cells in lines)
    # One line per row measured; not case 5's efficiency line, nor case 6's buffersize line.
    measured = [cells for cells in lines if re.match(r"\d+\. (?!the same|speed-up)", cells[0])]
    cases_measured = [int(cells[0].split(".")[0]) for cells in measured]
    assert cases_measured == [1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    for cells in measured[:-1]:  # case 11 below: the stdlib hangs there
        unit = MIB if cells[0].startswith("6.") else TIME
        assert _positive(cells[1], unit) and _positive(cells[2], unit), cells
        assert re.fullmatch(r"\d+\.\d\d", cells[3]), cells
        assert cells[4] in {"meets", "misses", "informational", "see next line"}, cells
    assert re.fullmatch(r"\d+\.\d\dx, \d+\.\d\d", _cells(run.stdout, "5. speed-up")[1])
    # Case 6's refpool with buffersize, over the case's input and over a tenth of it.
    buffered = [cells for cells in lines if cells[0].startswith("6. the same")]
    assert [cells[0] for cells in buffered] == [
        "6. the same, refpool, buffersize=64",
        "6. the same over 2,000 items, refpool, buffersize=64",
    ]
    assert all(_positive(cells[1], MIB) and cells[2] == "-" for cells in buffered), buffered

    # Case 11: one job failed on refpool, promptly; the stdlib hangs (bpo-22393), and says so.
    refpool_cell, stdlib_cell, ratio_cell, bar_cell = _cells(run.stdout, "11.")[1:]
    assert _positive(refpool_cell, TIME) and (ratio_cell, bar_cell) == ("-", "meets")
    hangs = re.fullmatch(r"hangs \[([a-z])\]", stdlib_cell)
    assert hangs is not None, stdlib_cell
    assert f"- [{hangs.group(1)}] no answer {LEAST_ANSWER_SECONDS:g} s after the kill" in run.stdout

    rows = json.loads(raw.read_text(encoding="utf-8"))["rows"]
    assert sorted({row["case"] for row in rows}) == list(range(1, 12))
    for row in rows:
        assert all(value > 0 for values in row["samples"].values() for value in values), row
        assert row["statuses"] == ({"stdlib": "hangs"} if row["case"] == 11 else {}), row
