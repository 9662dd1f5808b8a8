"""CrossHair proves the contracts of refpool's pure functions, and catches seeded bugs in copies of them.

Each module is checked by `crosshair check --analysis_kind=PEP316` in a
subprocess under an outer timeout: CrossHair's own --per_condition_timeout
counts CPU time, not waiting (PITFALLS.md). The contracts pin down LIFE-2,
LIFE-3, LIFE-4 (lifecycle.py), API-2, API-3 (chunking.py), WORK-1, WORK-2,
WORK-3, WORK-4, WORK-5, WORK-7, SHUT-1, SHUT-2, LOST-4 (roster.py), WORK-6
(claims.py), JOB-1, JOB-6, API-4 (jobs.py), BUF-1 (buffered.py).
The whole file takes about 50 s on two cores.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MUTANTS = Path(__file__).resolve().parent / "mutants"

# CPU seconds per postcondition. Every contract but release_in_order's and
# taken_back's is confirmed over all paths in well under a second; those two
# loop over a symbolic dict or list, so they have no end of paths and use their
# whole budget on each of their postconditions. 4 s finds the seeded
# release_in_order bug in a few of them.
PER_CONDITION_TIMEOUT = 4.0
OUTER_TIMEOUT = 100  # wall-clock seconds for one crosshair run

CONFIRMED = "Confirmed over all paths."
NOT_CONFIRMED = "Not confirmed."

# The functions that carry contracts, by module, and whether CrossHair must
# confirm them over all paths (True) or only find no counterexample (False).
CONTRACTS: dict[str, dict[str, bool]] = {
    "refpool/lifecycle.py": {"next_state": True, "legal_events": True},
    "refpool/chunking.py": {"default_chunksize": True, "count_chunks": True, "chunk_bounds": True},
    "refpool/roster.py": {
        "workers_to_start": True,
        "retiring": True,
        "can_take": True,
        "needs_sentinel": True,
        "initializer_pause_ms": True,
    },
    # taken_back loops over a symbolic list, as release_in_order over a dict: no end of paths.
    "refpool/claims.py": {"may_start": True, "taken_back": False},
    "refpool/jobs.py": {"chunk_done": True, "release_in_order": False},
    "refpool/buffered.py": {"may_draw": True},
}

# Each mutant is a copy of a real function with one seeded bug, and must be refuted.
MUTANTS_REFUTED = {
    "bad_chunking.py": ("refpool/chunking.py", "default_chunksize"),  # API-3: ceiling off by one
    "bad_roster.py": ("refpool/roster.py", "workers_to_start"),  # WORK-2: a worker for no task
    "bad_claims.py": ("refpool/claims.py", "may_start"),  # WORK-6: a taken-back task started
    "bad_lifecycle.py": ("refpool/lifecycle.py", "next_state"),  # LIFE-2: close() undoes terminate()
    "bad_jobs.py": ("refpool/jobs.py", "release_in_order"),  # JOB-1: an outcome released twice
    "bad_buffered.py": ("refpool/buffered.py", "may_draw"),  # BUF-1: buffersize + 1 drawn
}

_REPORT = re.compile(r"^(?P<path>.+?):(?P<line>\d+): (?P<level>info|error): (?P<message>.*)$")


@dataclass(frozen=True)
class Report:
    line: int
    level: str
    message: str


@dataclass(frozen=True)
class Contracted:
    name: str
    docstring: str
    lines: range  # the docstring's lines, where CrossHair reports its conditions
    posts: int  # how many postconditions


def crosshair(target: Path) -> tuple[int, list[Report], str]:
    """Run `crosshair check` on one file; its exit code, its reports and all its output."""
    command = [
        sys.executable,
        "-m",
        "crosshair",
        "check",
        "--analysis_kind=PEP316",
        "--report_all",
        f"--per_condition_timeout={PER_CONDITION_TIMEOUT}",
        str(target),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=OUTER_TIMEOUT)
    reports = []
    for line in done.stdout.splitlines():
        if (match := _REPORT.match(line)) and Path(match["path"]).resolve() == target.resolve():
            reports.append(Report(int(match["line"]), match["level"], match["message"]))
    return done.returncode, reports, done.stdout + done.stderr


def contracted_functions(path: Path) -> dict[str, Contracted]:
    """The module-level functions of `path` whose docstring has a PEP 316 postcondition."""
    found = {}
    for node in ast.parse(path.read_text()).body:
        if not isinstance(node, ast.FunctionDef) or (docstring := ast.get_docstring(node)) is None:
            continue
        posts = sum(1 for line in docstring.splitlines() if re.match(r"\s*post(\[[^]]*\])?:", line))
        if posts:
            first = node.body[0]
            assert first.end_lineno is not None
            found[node.name] = Contracted(
                node.name, docstring, range(first.lineno, first.end_lineno + 1), posts
            )
    return found


def reports_by_function(functions: dict[str, Contracted], reports: list[Report]) -> dict[str, list[Report]]:
    by_function: dict[str, list[Report]] = {name: [] for name in functions}
    for report in reports:
        owners = [f.name for f in functions.values() if report.line in f.lines]
        assert owners, f"a report outside every contract: {report}"
        by_function[owners[0]].append(report)
    return by_function


@pytest.mark.timeout(OUTER_TIMEOUT + 20)
@pytest.mark.parametrize("module", sorted(CONTRACTS))
def test_contracts_hold(module: str) -> None:
    path = REPO / module
    functions = contracted_functions(path)
    assert set(functions) == set(CONTRACTS[module]), "update CONTRACTS when a contract is added or removed"

    code, reports, output = crosshair(path)

    assert code == 0, f"CrossHair found a counterexample or failed:\n{output}"
    assert not [r for r in reports if r.level == "error"], output
    for name, found in reports_by_function(functions, reports).items():
        messages = [r.message for r in found]
        assert len(messages) == functions[name].posts, f"{name}: not every postcondition reported\n{output}"
        allowed = {CONFIRMED} if CONTRACTS[module][name] else {CONFIRMED, NOT_CONFIRMED}
        assert set(messages) <= allowed, f"{name}: {messages}\n{output}"


@pytest.mark.timeout(OUTER_TIMEOUT + 20)
@pytest.mark.parametrize("mutant", sorted(MUTANTS_REFUTED))
def test_crosshair_refutes_a_seeded_bug(mutant: str) -> None:
    path = MUTANTS / mutant
    original_module, name = MUTANTS_REFUTED[mutant]
    functions = contracted_functions(path)
    original = contracted_functions(REPO / original_module)
    # The mutant is checked against the real contracts, not a weaker copy of them.
    for function in functions.values():
        assert function.docstring == original[function.name].docstring, f"{mutant}: contract drifted"

    code, reports, output = crosshair(path)

    assert code == 1, f"CrossHair missed the bug in {mutant}:\n{output}"
    refuted = [r for r in reports_by_function(functions, reports)[name] if r.level == "error"]
    assert refuted, output
    assert all(f"when calling {name}(" in r.message for r in refuted), output
