"""The `refpool` command: `refpool conform TARGET ...`, `refpool trace ...` (also `python -m refpool ...`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="refpool", description="refpool: a reference process pool and its oracle."
    )
    commands = top.add_subparsers(dest="command", required=True)
    conform = commands.add_parser(
        "conform",
        help="check a pool implementation against the spec",
        description="Check a pool with the multiprocessing.pool API against the spec, clause by clause.",
        epilog="exit codes: 0 every clause passed (or --report-only); 1 a clause did not pass, or the "
        "fuzzer found a divergence; 2 the command could not run (a bad option, a target that cannot "
        "be loaded, no clause selected)",
    )
    conform.add_argument(
        "target",
        help="module:attribute of a pool class or factory, or one of: refpool, refpool-threads, "
        "stdlib, stdlib-threads, billiard, multiprocess, ray",
    )
    conform.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    conform.add_argument(
        "--clauses", metavar="PATTERN", help="comma-separated globs of clause IDs, e.g. 'LIFE-*,LOST-1'"
    )
    conform.add_argument(
        "--fuzz-examples", type=int, default=30, metavar="N", help="differential fuzzing (0: none)"
    )
    conform.add_argument(
        "--fuzz-db",
        metavar="DIR|redis://HOST:PORT",
        help="an example database the fuzzer replays first and saves divergences to: a directory, or a "
        "Redis server shared by many machines (pip install 'refpool[redis]')",
    )
    conform.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="deadline of each check (HANG after)"
    )
    conform.add_argument("--jobs", type=int, default=2, metavar="N", help="checks run at once")
    conform.add_argument("--output", metavar="FILE", help="write the report here instead of standard output")
    conform.add_argument(
        "--junit-xml", metavar="FILE", help="also write a JUnit XML report: one test case per clause"
    )
    conform.add_argument(
        "--shard",
        metavar="I/N",
        help="run only shard I of N of the selected clauses (every N-th, from the I-th); "
        "the fuzzer runs in shard 1 only",
    )
    conform.add_argument(
        "--report-only",
        action="store_true",
        help="exit 0 whatever the verdicts (1 is for a target that breaks clauses)",
    )
    from .trace.command import add_arguments as add_trace_arguments

    add_trace_arguments(
        commands.add_parser(
            "trace",
            help="run a small pool and draw what each of its parts did",
            description="Run a small process pool through a scenario and show its trace, one lane per "
            "part of the pool (spec/trace.md).",
        )
    )
    return top


def conform(args: argparse.Namespace) -> int:
    from .conform.ci import junit_xml, parse_shard, progress_reporter, shard
    from .conform.registry import CHECKS
    from .conform.report import FORMATS, Report
    from .conform.runner import run_all, select
    from .conform.targets import TargetUnavailable, parse

    shard_index, shard_count = 1, 1
    if args.shard is not None:
        try:
            shard_index, shard_count = parse_shard(args.shard)
        except ValueError as error:
            print(f"refpool conform: {error}", file=sys.stderr)
            return 2
    if args.fuzz_db is not None:
        failure = fuzz_db_error(args.fuzz_db)
        if failure:
            print(f"refpool conform: {failure}", file=sys.stderr)
            return 2
    try:
        target = parse(args.target)
        target.load()
    except TargetUnavailable as error:
        print(f"refpool conform: {error}", file=sys.stderr)
        return 2
    clause_ids = select(args.clauses)
    if not clause_ids:
        print(
            f"refpool conform: no clause matches {args.clauses!r}; known: {', '.join(CHECKS)}",
            file=sys.stderr,
        )
        return 2
    clause_ids = shard(clause_ids, shard_index, shard_count)  # may be none: more shards than clauses

    progress, finish = progress_reporter(sys.stderr)
    verdicts = run_all(args.target, clause_ids, args.timeout, args.jobs, progress)
    finish()
    fuzz = None
    if args.fuzz_examples > 0 and shard_index == 1:
        fuzz = run_fuzzer(args.target, args.fuzz_examples, args.fuzz_db)
    report = Report(args.target, target.version, verdicts, fuzz)
    text = FORMATS[args.format](report)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    if args.junit_xml:
        with open(args.junit_xml, "w", encoding="utf-8") as out:
            out.write(junit_xml(report))
    return 0 if report.passed or args.report_only else 1


def fuzz_db_error(value: str) -> str:
    """Why --fuzz-db's value cannot be used, or "" if it can: checked before any clause runs."""
    try:
        from .conform.fuzz_db import example_database
    except ImportError:
        return ""  # no Hypothesis: the fuzzer is skipped, and says why
    try:
        example_database(value)
    except ValueError as error:
        return str(error)
    return ""


def run_fuzzer(target: str, examples: int, fuzz_db: str | None = None) -> dict[str, object]:
    try:
        import hypothesis  # noqa: F401  (the fuzzer is built on it; the pool itself needs nothing)
    except ImportError:
        reason = "the fuzzer needs Hypothesis: pip install 'refpool[conform]'"
        return {"status": "SKIP", "divergence": False, "examples": 0, "message": reason}
    from .conform.fuzz import fuzz_in_subprocess

    print(f"fuzzing: {examples} examples against the model", file=sys.stderr, flush=True)
    return fuzz_in_subprocess(target, examples, max(120.0, examples * 6.0), fuzz_db=fuzz_db).as_dict()


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "conform":
        return conform(args)
    if args.command == "trace":
        from .trace.command import run as trace

        return trace(args)
    raise AssertionError(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
