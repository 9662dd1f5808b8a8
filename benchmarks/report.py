"""The results table, what it ran on, and the generated section of benchmarks/README.md.

Every number in the table is a median over the repetitions. The ratio column is refpool's
median over the stdlib's (time, or peak RSS in case 6): below 1 refpool is faster or
smaller. A target with no equivalent of a case shows "n/a" and a footnote with the reason;
one that hangs, or fails more jobs than it should (cases 10 and 11), shows "hangs" or
"fails N of M" and a footnote with what happened.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from string import ascii_lowercase
from typing import Any

from .cases import BARE, SERIAL, Row, Unit
from .harness import WORKERS, Bar, Samples, ratio, speed_up_and_efficiency, verdict

START_MARKER = "<!-- benchmark-results:start -->"
END_MARKER = "<!-- benchmark-results:end -->"
README = Path(__file__).with_name("README.md")


@dataclass(frozen=True)
class RowResult:
    row: Row
    samples: Samples


@dataclass(frozen=True)
class RunInfo:
    """What the table was measured with and on; printed above it."""

    date: str
    command: str
    mode: str
    repetitions: str
    machine: str
    python: str
    versions: dict[str, str]  # target -> version, for the targets measured
    left_out: list[str] = field(default_factory=list)  # peers not installed
    task_loops: int | None = None  # case 5's calibrated spin()


class Footnotes:
    """One letter per distinct reason, in the order the reasons appear in the table."""

    def __init__(self) -> None:
        self._letters: dict[str, str] = {}

    def mark(self, reason: str) -> str:
        if reason not in self._letters:
            self._letters[reason] = ascii_lowercase[len(self._letters) % 26]
        return f"[{self._letters[reason]}]"

    def lines(self) -> list[str]:
        return [f"- [{letter}] {reason}" for reason, letter in self._letters.items()]


def format_value(value: float, unit: Unit) -> str:
    if unit is Unit.MIB:
        return f"{value:,.0f} MiB" if value >= 100 else f"{value:.1f} MiB"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def format_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cell(samples: Samples, name: str, unit: Unit, notes: Footnotes) -> str:
    median = samples.median(name)
    if median is not None:
        return format_value(median, unit)
    if name in samples.missing:
        if name in samples.statuses:
            status = samples.statuses[name]
        else:
            status = "failed" if name in samples.failed else "n/a"
        return f"{status} {notes.mark(samples.missing[name])}"
    return "-"  # not part of this row


def _bar_cell(row: Row, samples: Samples, refpool_ratio: float | None) -> str:
    """The bar column of a row's own line."""
    if row.bar is Bar.EFFICIENCY:
        return "see next line"
    if "refpool" in samples.statuses:  # it hangs, or fails more jobs than it should
        return "misses"
    value = refpool_ratio if row.bar.judges_ratio else samples.median("refpool")
    return verdict(row.bar, value, row.limit)


def row_lines(result: RowResult, targets: Sequence[str], notes: Footnotes) -> list[list[str]]:
    """The table lines of one row: its own, and those of case 5's efficiency and case 6's variants."""
    row, samples = result.row, result.samples
    stdlib = samples.median("stdlib")
    refpool_ratio = ratio(samples.median("refpool"), stdlib)
    lines = [
        [
            row.label,
            *(_cell(samples, name, row.unit, notes) for name in targets),
            format_ratio(refpool_ratio),
            _bar_cell(row, samples, refpool_ratio),
        ]
    ]
    if row.serial is not None:
        lines.append(_efficiency_line(row, samples, targets, notes))
    for variant in row.variants:
        name = variant.name
        if name not in {*samples.values, *samples.missing}:
            continue  # refpool was not measured
        cells = [_cell(samples, name, row.unit, notes) if t == "refpool" else "-" for t in targets]
        variant_ratio = ratio(samples.median(name), stdlib) if variant.compared else None
        lines.append(
            [f"{row.case}. {variant.label}", *cells, format_ratio(variant_ratio), verdict(row.bar, None)]
        )
    return lines


def _efficiency_line(row: Row, samples: Samples, targets: Sequence[str], notes: Footnotes) -> list[str]:
    """Case 5: speed-up over the serial run in the parent, and efficiency = speed-up / workers."""
    serial = samples.median(SERIAL)
    cells: list[str] = []
    refpool_efficiency: float | None = None
    for name in targets:
        pool = samples.median(name)
        if serial is None or pool is None:
            cells.append(_cell(samples, name, row.unit, notes) if pool is None else "-")
            continue
        speed_up, efficiency = speed_up_and_efficiency(serial, pool)
        cells.append(f"{speed_up:.2f}x, {efficiency:.2f}")
        if name == "refpool":
            refpool_efficiency = efficiency
    serial_text = "n/a" if serial is None else format_value(serial, Unit.SECONDS)
    label = f"{row.case}. speed-up, efficiency (serial run in the parent: {serial_text}"
    bare = samples.median(BARE)
    if serial is not None and bare is not None:
        ceiling, _ = speed_up_and_efficiency(serial, bare)
        label += f"; {WORKERS} bare processes, no pool: {ceiling:.2f}x"
    label += ")"
    return [label, *cells, "-", verdict(Bar.EFFICIENCY, refpool_efficiency)]


def table(results: Sequence[RowResult], targets: Sequence[str]) -> str:
    """A Markdown table, one column per target, then the footnotes."""
    notes = Footnotes()
    header = ["case", *targets, "refpool/stdlib", "bar"]
    body = [line for result in results for line in row_lines(result, targets, notes)]
    rule = ["---", *("---:" for _ in targets), "---:", "---"]
    text = "\n".join("| " + " | ".join(cells) + " |" for cells in [header, rule, *body])
    footnotes = notes.lines()
    return text + ("\n\n" + "\n".join(footnotes) if footnotes else "")


def bars_line() -> str:
    return (
        f"Bars: cases 1, 2 and 7 {Bar.TIME_RATIO.value}; cases 3, 4, 8 and 9 {Bar.STRICT_TIME_RATIO.value};"
        f" case 5 {Bar.EFFICIENCY.value} (speed-up = serial time / pool time, efficiency = speed-up / 2);"
        f" case 10 {Bar.BEFORE_LONG_TASK.value} (refpool's median below the long task's length);"
        f" case 11 {Bar.ONE_JOB_FAILS.value} (refpool has a value, not a status); case 6 informational."
    )


def describe(info: RunInfo) -> list[str]:
    """The lines printed above the table."""
    versions = "; ".join(f"{name} {version}" for name, version in info.versions.items())
    lines = [
        f"- Command: `{info.command}` ({info.mode} mode), {info.date}",
        f"- Medians of {info.repetitions} alternating repetitions; 2 workers; "
        "process pools fork (case 1: fork and spawn); cases 7-9 use thread pools",
        f"- Machine: {info.machine}",
        f"- Python {info.python}; measured: {versions}",
    ]
    if info.left_out:
        lines.append(f"- Not installed, left out: {', '.join(info.left_out)}")
    if info.task_loops is not None:
        lines.append(f"- Case 5: one task is spin({info.task_loops:,}), calibrated to 10 ms in the parent")
    lines.append(f"- {bars_line()}")
    return lines


def section(info: RunInfo, table_text: str) -> str:
    """What goes between the README's markers."""
    return "\n".join([*describe(info), "", table_text])


def machine() -> str:
    """CPU model, core count and platform, for the record."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.platform()}"


def source_state(folder: Path) -> str | None:
    """The git commit of `folder` and whether it has uncommitted changes; None outside git.

    refpool is measured as it is on disk, so a table says which refpool it is about.
    """
    git = ["git", "-C", str(folder)]
    try:
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        changes = subprocess.run([*git, "status", "--porcelain", "--", "."], capture_output=True, text=True)
    except OSError:  # no git
        return None
    if commit.returncode != 0 or changes.returncode != 0:
        return None
    dirty = f", with uncommitted changes in {folder.name}/" if changes.stdout.strip() else ""
    return f"commit {commit.stdout.strip()}{dirty}"


class MissingMarker(ValueError):
    """The README lacks a marker of the generated section, or has it more than once."""


def replace_section(text: str, new_section: str, where: str = "the README") -> str:
    """`text` with everything between the two markers replaced; the rest is kept as it was."""
    for marker in (START_MARKER, END_MARKER):
        count = text.count(marker)
        if count != 1:
            found = "no" if count == 0 else f"{count} times the"
            raise MissingMarker(
                f"{where} has {found} marker {marker}; it needs {START_MARKER} and then {END_MARKER},"
                " once each, around the generated results"
            )
    start = text.index(START_MARKER) + len(START_MARKER)
    end = text.index(END_MARKER)
    if end < start:
        raise MissingMarker(f"{where} has {END_MARKER} before {START_MARKER}; swap them")
    return f"{text[:start]}\n{new_section.strip()}\n{text[end:]}"


def write_readme(info: RunInfo, table_text: str, path: Path = README) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(replace_section(text, section(info, table_text), where=str(path)), encoding="utf-8")


def raw(info: RunInfo, results: Sequence[RowResult]) -> dict[str, Any]:
    """Everything measured, for --json: every sample, not only the medians."""
    return {
        "run": asdict(info),
        "rows": [
            {
                "case": result.row.case,
                "label": result.row.label,
                "unit": result.row.unit.value,
                "bar": result.row.bar.name,
                "samples": result.samples.values,
                "medians": {name: result.samples.median(name) for name in result.samples.values},
                "missing": result.samples.missing,
                "failed": result.samples.failed,
                "statuses": result.samples.statuses,
            }
            for result in results
        ],
    }
