"""`python -m benchmarks`: run the cases, print the table, optionally save it.

The exit status is 0, or 1 when a measurement of refpool, the stdlib or a baseline failed
with an error (a wrong result, a crashed probe). "n/a" cells are expected, and a peer that
fails is shown as "failed" with the error in a footnote: neither fails the run. Nor does a
pool that "hangs" or "fails N of M" in cases 10 and 11, refpool or the stdlib included:
that is what those cases find out about a pool, not an error of the suite.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shlex
import sys
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from . import work
from .cases import CASES, FULL, QUICK, TASK_SECONDS, Sizes, rows
from .harness import measure_alternating, stderr_progress
from .report import RowResult, RunInfo, machine, raw, section, source_state, table, write_readme
from .targets import TARGETS, TargetInfo, installed

ALWAYS = ("refpool", "stdlib")


def comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time refpool against multiprocessing.pool, and the peers that are installed.",
    )
    top.add_argument("--quick", action="store_true", help="smaller sizes, fewer repetitions (under a minute)")
    top.add_argument(
        "--cases", type=comma_list, metavar="N,N", help=f"cases to run, e.g. 2,4 (default: 1-{max(CASES)})"
    )
    top.add_argument("--repeat", type=int, metavar="N", help="repetitions of every case, case 6 included")
    top.add_argument(
        "--targets",
        type=comma_list,
        metavar="NAME,NAME",
        help=f"default: all installed of {','.join(TARGETS)}",
    )
    top.add_argument("--json", type=Path, metavar="FILE", help="save every sample here")
    top.add_argument(
        "--write-readme", action="store_true", help="rewrite the results of benchmarks/README.md"
    )
    # For the tests: every item count, case 10's long task and the waits of cases 10 and 11
    # times this factor (see Sizes.scaled).
    top.add_argument("--scale", type=float, default=1.0, help=argparse.SUPPRESS)
    return top


def usage_error(message: str) -> int:
    print(f"python -m benchmarks: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        cases = sorted({int(case) for case in args.cases}) if args.cases else list(CASES)
    except ValueError:
        cases = []
    if not cases or not set(cases) <= set(CASES):
        return usage_error(f"--cases takes numbers among {','.join(map(str, CASES))}")
    wanted = args.targets or list(TARGETS)
    unknown = [name for name in wanted if name not in TARGETS]
    if unknown:
        return usage_error(f"unknown target {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    if args.repeat is not None and args.repeat < 1:
        return usage_error("--repeat must be at least 1")
    present, absent = installed(wanted)
    if set(absent) & set(ALWAYS):
        return usage_error(f"cannot import {', '.join(absent)}")

    sizes = QUICK if args.quick else FULL
    if args.scale != 1.0:
        sizes = sizes.scaled(args.scale)
    if args.repeat is not None:
        sizes = replace(sizes, repeat=args.repeat, rss_repeat=args.repeat, short_repeat=args.repeat)
    task_loops = work.calibrate_spin(TASK_SECONDS) if 5 in cases else None
    adapters = [info.adapter() for info in present]
    # Pools fork their workers from handler threads, as CPython's own pool does (3.12+ warns).
    warnings.filterwarnings(
        "ignore", message=r"This process .* is multi-threaded", category=DeprecationWarning
    )
    results = [
        RowResult(
            row, measure_alternating(row.participants(adapters), row.repeat, stderr_progress(row.label))
        )
        for row in rows(cases, sizes, task_loops or 1)
    ]

    info = run_info(args, sizes, present, absent, task_loops)
    table_text = table(results, [adapter.name for adapter in adapters])
    print(section(info, table_text))
    if args.json is not None:
        args.json.write_text(json.dumps(raw(info, results), indent=2) + "\n", encoding="utf-8")
    if args.write_readme:
        write_readme(info, table_text)
    # A peer that breaks is its own footnote; refpool, the stdlib or a baseline breaking is an error.
    peers = set(TARGETS) - set(ALWAYS)
    return 1 if any(set(result.samples.failed) - peers for result in results) else 0


def run_info(
    args: argparse.Namespace,
    sizes: Sizes,
    present: list[TargetInfo],
    absent: list[str],
    task_loops: int | None,
) -> RunInfo:
    """What the table was measured with: the options that change the numbers, and the machine."""
    command = ["python", "-m", "benchmarks"]
    if args.quick:
        command.append("--quick")
    for option in ("cases", "targets"):
        if getattr(args, option):
            command += [f"--{option}", ",".join(getattr(args, option))]
    if args.repeat is not None:
        command += ["--repeat", str(args.repeat)]
    if args.scale != 1.0:
        command += ["--scale", str(args.scale)]
    versions = {info.name: info.version for info in present}
    if "refpool" in versions:
        import refpool

        state = source_state(Path(refpool.__file__).parent)
        versions["refpool"] += f" ({state})" if state else ""
    others = []
    if sizes.short_repeat != sizes.repeat:
        others.append(f"cases 1, 2 and 7: {sizes.short_repeat}")
    if sizes.rss_repeat != sizes.repeat:
        others.append(f"case 6: {sizes.rss_repeat}")
    repetitions = str(sizes.repeat) + (f" ({'; '.join(others)})" if others else "")
    return RunInfo(
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=shlex.join(command),
        mode="quick" if args.quick else "full",
        repetitions=repetitions,
        machine=machine(),
        python=f"{platform.python_version()} ({platform.python_implementation()})",
        versions=versions,
        left_out=absent,
        task_loops=task_loops,
    )
