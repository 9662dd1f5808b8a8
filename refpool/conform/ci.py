"""What the oracle gives a CI pipeline: shards, a JUnit XML report, progress a log can read.

- `--shard I/N` splits the selected clauses across N jobs: job I runs every
  N-th clause, starting with the I-th, so that slow and quick clauses (which
  sit together in the spec) spread over the jobs. The fuzzer runs in shard 1
  only: it checks the whole pool, not a clause.
- `--junit-xml FILE` writes one test case per clause (and one for the fuzzer),
  which CI systems show as tests: FAIL as a failure, HANG and CRASH as errors,
  SKIP as skipped, each with the one-line reason as its message.
- Progress: on a terminal, one line rewritten in place; in a log (not a
  terminal), one line per clause as it finishes, with its verdict.

Exit codes of `refpool conform` (also in its --help): 0 every clause passed
(or --report-only), 1 some clause did not pass or the fuzzer found a
divergence, 2 the command could not run (a bad option, a target that cannot
be loaded, no clause selected).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Sequence
from typing import TextIO

from .report import Report
from .runner import Verdict

EXIT_CODES = (
    "exit codes: 0 every clause passed (or --report-only); 1 a clause did not pass, or the fuzzer "
    "found a divergence; 2 the command could not run (bad option, target not loadable, no clause)"
)

_SHARD = re.compile(r"^(\d+)/(\d+)$")


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' as (I, N), with 1 <= I <= N; ValueError naming the text otherwise."""
    match = _SHARD.match(text.strip())
    if match is None:
        raise ValueError(f"--shard must be I/N, as 2/4, not {text!r}")
    index, count = int(match[1]), int(match[2])
    if not 1 <= index <= count:
        raise ValueError(f"--shard I/N needs 1 <= I <= N, not {text!r}")
    return index, count


def shard(clause_ids: Sequence[str], index: int, count: int) -> list[str]:
    """The clauses of shard `index` of `count` (1-based): every count-th, from the index-th."""
    return [clause for position, clause in enumerate(clause_ids) if position % count == index - 1]


def progress_reporter(stream: TextIO) -> tuple[Callable[[int, int, Verdict], None], Callable[[], None]]:
    """A progress callback for run_all, and what to call when it is done."""
    live = stream.isatty()

    def report(done: int, total: int, verdict: Verdict) -> None:
        if live:
            print(f"\rclause {done} of {total} ({verdict.clause})   ", end="", file=stream, flush=True)
        else:
            line = f"[{done}/{total}] {verdict.clause} {verdict.status} ({verdict.seconds:.1f} s)"
            if verdict.reason and verdict.status != "PASS":
                line += f": {verdict.reason}"
            print(line, file=stream, flush=True)

    def finish() -> None:
        if live:
            print(file=stream)  # end the line rewritten in place

    return report, finish


_FAILURE = {"FAIL": "failure", "HANG": "error", "CRASH": "error", "SKIP": "skipped"}


def junit_xml(report: Report) -> str:
    """The report as JUnit XML: one test suite, one test case per clause, and one for the fuzzer."""
    suite = ElementTree.Element("testsuite", name=f"refpool conform {report.target}")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    for verdict in report.verdicts:
        title = f"{verdict.title} (refpool)" if verdict.extension else verdict.title
        case = _case(suite, report.target, f"{verdict.clause}: {title}", verdict.seconds)
        _outcome(case, verdict.status, f"{verdict.clause} {verdict.status}: {verdict.reason}", counts)
        total_time += verdict.seconds
    if report.fuzz is not None:
        case = _case(suite, report.target, "fuzz: the target against the executable model", 0.0)
        status = "FAIL" if report.fuzz.get("divergence") else "PASS"
        if report.fuzz.get("status") == "SKIP":
            status = "SKIP"
        _outcome(case, status, report.fuzz_line(), counts)
        if report.fuzz.get("script"):
            ElementTree.SubElement(case, "system-out").text = str(report.fuzz["script"])
    for name, value in counts.items():
        suite.set(name, str(value))
    suite.set("time", f"{total_time:.3f}")
    suites = ElementTree.Element("testsuites")
    suites.append(suite)
    ElementTree.indent(suites)
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _case(suite: ElementTree.Element, target: str, name: str, seconds: float) -> ElementTree.Element:
    return ElementTree.SubElement(
        suite, "testcase", classname=f"refpool.conform.{target}", name=name, time=f"{seconds:.3f}"
    )


def _outcome(case: ElementTree.Element, status: str, message: str, counts: dict[str, int]) -> None:
    counts["tests"] += 1
    tag = _FAILURE.get(status)
    if tag is None:
        return  # PASS: a test case with nothing inside
    counts["failures" if tag == "failure" else "errors" if tag == "error" else "skipped"] += 1
    ElementTree.SubElement(case, tag, message=message, type=status)
