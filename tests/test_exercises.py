"""Each break-it exercise of spec/exercises.md is caught by every check it names; a harmless edit is not.

The exercises live in tests/exercises.py. Here: the page is rendered from them;
each edit occurs once in the code; each named test exists, and each named
model test exists, names its seeded bug and passes (the model finds the bug);
every check an exercise names is one the clause-by-mutant matrix recorded
catching its mutant; and, in a copy of the committed tree with the edit applied (as
tests/matrix/run.py makes one), the named test fails and `refpool conform`
reports the named clause not passing. All the copies run at once, in threads
that wait on subprocesses.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import pathlib
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from models.pool_model import BUGS
from models.spin_check import SEEDED_BUGS
from tests import exercises_page
from tests.exercises import EXERCISES, EXPLORER, Exercise
from tests.matrix.catalogue import MUTANTS
from tests.matrix.mutant import ROOT, Mutant, copy_tree
from tests.matrix.render import current, load_results
from tests.matrix.run import junit_outcomes, run_oracle, run_pytest

T = TypeVar("T")
NOT_PASSING = ("FAIL", "HANG", "CRASH")  # the oracle's verdicts that catch a bug (tests/matrix/run.py)
RUN_ALL = 240  # seconds: every copy at once; about 40 s on 2 cores, the slowest test waits 30 s

# The seeded non-bug: a comment reworded. Every check the exercises name must pass with it.
HARMLESS = Mutant(
    "harmless-comment",
    clauses=(),
    file="refpool/roster.py",
    find="        Caller holds cond; after starting workers, closing, or reaping a worker.",
    replace="        The caller holds cond: after it starts workers, closes, or reaps a worker.",
    why="a docstring reworded: nothing the pool does changes",
)


def _junit_name(node: str) -> str:
    """A node id as the JUnit report names it (tests/test_x.py::name -> tests.test_x::name)."""
    path, _, name = node.partition("::")
    return f"{path.removesuffix('.py').replace('/', '.')}::{name}"


def _in_copy(edit: Mutant, check: Callable[[pathlib.Path], T]) -> T:
    """Run `check` in a copy of the committed tree (tests/matrix/mutant.py's) with `edit` applied."""
    with tempfile.TemporaryDirectory(prefix=f"refpool-exercise-{edit.name}-") as folder:
        root = pathlib.Path(folder)
        copy_tree(root)
        edit.apply(root)
        return check(root)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What the checks an exercise names said with its edit in place."""

    failed: list[str] | None  # the tests that failed (JUnit names); None: pytest could not run
    oracle: dict[str, dict[str, str]]  # clause -> status and reason

    def caught_by_test(self, node: str) -> bool:
        return self.failed is not None and _junit_name(node) in self.failed

    def caught_by_clause(self, clause: str) -> bool:
        return self.oracle.get(clause, {}).get("status") in NOT_PASSING

    def passed(self, clauses: list[str]) -> bool:
        """Every test ran and passed, and every clause passed: the edit is NOT caught."""
        return self.failed == [] and all(self.oracle.get(c, {}).get("status") == "PASS" for c in clauses)


def check_edit(
    runners: concurrent.futures.Executor, edit: Mutant, tests: list[str], clauses: list[str]
) -> concurrent.futures.Future[Verdict]:
    """Start the named tests and the oracle's checks of the clauses, each in its own copy with
    `edit` applied; the future's verdict says what failed."""
    ran = runners.submit(_in_copy, edit, lambda root: run_pytest(root, tests))
    judged = runners.submit(_in_copy, edit, lambda root: run_oracle(root, edit.target, tuple(clauses)))
    joined: concurrent.futures.Future[Verdict] = concurrent.futures.Future()

    def settle(_: object) -> None:
        if ran.done() and judged.done() and not joined.done():
            outcome = ran.result()
            failed = outcome["failed"] if outcome["caught"] is not None else None
            joined.set_result(Verdict(failed, judged.result()))

    for part in (ran, judged):
        part.add_done_callback(settle)
    return joined


def run_model_tests(nodes: list[str]) -> dict[str, str]:
    """Run the model tests on the tree as it is: node -> passed, failed or skipped."""
    with tempfile.TemporaryDirectory(prefix="refpool-exercise-models-") as folder:
        report = pathlib.Path(folder) / "junit.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            *nodes,
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junit-xml={report}",
        ]
        subprocess.run(command, cwd=ROOT, capture_output=True, timeout=RUN_ALL)
        outcomes = junit_outcomes(report)
    return {node: outcomes.get(_junit_name(node), "not run") for node in nodes}


@dataclasses.dataclass(frozen=True)
class Results:
    exercises: dict[str, Verdict]  # title -> verdict with its edit
    harmless: Verdict  # every named test and clause, with the harmless edit
    models: dict[str, str]  # model test node -> passed, failed, skipped


def _model_nodes() -> list[str]:
    return [check.test for exercise in EXERCISES for check in exercise.models]


@pytest.fixture(scope="module")
def results() -> Iterator[Results]:
    tests = [e.test for e in EXERCISES]
    clauses = sorted({e.clause for e in EXERCISES})
    with concurrent.futures.ThreadPoolExecutor(2 * len(EXERCISES) + 3) as runners:
        models = runners.submit(run_model_tests, _model_nodes())
        harmless = check_edit(runners, HARMLESS, tests, clauses)
        each = {e.title: check_edit(runners, e.edit, [e.test], [e.clause]) for e in EXERCISES}
        yield Results(
            {title: verdict.result(RUN_ALL) for title, verdict in each.items()},
            harmless.result(RUN_ALL),
            models.result(RUN_ALL),
        )


# --- the page, the code and the matrix: no process started --------------------------------


def test_the_page_is_rendered_from_the_exercises() -> None:
    assert exercises_page.PAGE.read_text() == exercises_page.render(), "run: python -m tests.exercises_page"


def test_the_page_shows_a_changed_exercise_as_a_difference(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: an exercise whose clause changed renders to another page."""
    changed = (dataclasses.replace(EXERCISES[0], clause="LIFE-1"), *EXERCISES[1:])
    monkeypatch.setattr(exercises_page, "EXERCISES", changed)
    assert exercises_page.PAGE.read_text() != exercises_page.render()


def test_each_edit_occurs_exactly_once_in_the_code() -> None:
    """So that the page cannot show an edit the code no longer allows (HEAD's copy is checked
    too: Mutant.apply refuses an edit that does not occur once)."""
    assert {e.title: e.edit.occurrences() for e in EXERCISES} == {e.title: 1 for e in EXERCISES}
    assert HARMLESS.occurrences() == 1
    stale = dataclasses.replace(EXERCISES[0].edit, find=EXERCISES[0].edit.replace)
    assert stale.occurrences() == 0  # an edit already made, or rotted, is seen as such


def disagreements(exercise: Exercise) -> list[str]:
    """Where the exercise and the clause-by-mutant matrix differ: every check the exercise names
    must be one that the matrix's recorded result says caught its mutant, and every model bug
    the matrix names for the mutant must be named by the exercise."""
    edit = exercise.edit
    if edit not in MUTANTS:
        return [f"{exercise.title}: its edit is not the matrix mutant {edit.name}"]
    result = current(edit, load_results())
    if result is None:
        return [f"{exercise.title}: the matrix has no current result for {edit.name}"]
    caught_tests = {
        entry.partition("::")[0] for entry, outcome in result.get("tests", {}).items() if outcome["caught"]
    }
    caught_models = {name for name, outcome in result.get("models", {}).items() if outcome["caught"]}
    failed_clauses = {
        clause for clause, verdict in result.get("oracle", {}).items() if verdict["status"] != "PASS"
    }
    named = {
        exercise.test.partition("::")[0]: exercise.test.partition("::")[0] in caught_tests,
        exercise.clause: exercise.clause in failed_clauses,
        **{check.matrix_name: check.matrix_name in caught_models for check in exercise.models},
    }
    found = [
        f"{exercise.title}: the matrix does not record {check} catching {edit.name}"
        for check, seen in named.items()
        if not seen
    ]
    names = {check.matrix_name for check in exercise.models}
    found += [
        f"{exercise.title}: the matrix names {bug}, the exercise does not"
        for bug in edit.model_bugs
        if bug not in names
    ]
    return found


def test_the_exercises_agree_with_the_matrix() -> None:
    assert [d for e in EXERCISES for d in disagreements(e)] == []


def test_a_check_the_matrix_does_not_record_is_a_disagreement() -> None:
    """The check above can fail: an exercise that names a clause the matrix did not see fail with
    its mutant disagrees."""
    first = EXERCISES[0]
    assert disagreements(dataclasses.replace(first, clause="LIFE-1")) == [
        f"{first.title}: the matrix does not record LIFE-1 catching {first.edit.name}"
    ]


def test_each_model_check_names_a_seeded_bug_its_model_knows() -> None:
    for exercise in EXERCISES:
        for check in exercise.models:
            assert check.bug in (BUGS if check.model == EXPLORER else SEEDED_BUGS), check
            assert f"[{check.bug}" in check.test, f"{check.test} does not name {check.bug}"


def test_each_clause_is_a_clause_of_the_spec() -> None:
    spec = (ROOT / "spec" / "pool.md").read_text()
    assert [e.clause for e in EXERCISES if f"**{e.clause}**" not in spec] == []


def test_each_named_test_exists() -> None:
    """Each node id is collected (the named tests run in the ordinary suite); a made-up one is not."""
    nodes = [e.test for e in EXERCISES] + _model_nodes()
    made_up = EXERCISES[0].test + "_which_does_not_exist"
    files = sorted({node.partition("::")[0] for node in nodes})
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files]
    listed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120).stdout
    collected = set(listed.splitlines())
    assert [node for node in nodes if node not in collected] == []
    assert made_up not in collected


# --- the edits, applied: every copy at once ---------------------------------------------


@pytest.mark.timeout(RUN_ALL)
@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.edit.name)
def test_the_exercise_is_caught_by_its_test_and_its_clause(exercise: Exercise, results: Results) -> None:
    verdict = results.exercises[exercise.title]
    assert verdict.caught_by_test(exercise.test), f"{exercise.test} did not fail: {verdict.failed}"
    assert verdict.caught_by_clause(exercise.clause), f"{exercise.clause}: {verdict.oracle}"


@pytest.mark.timeout(RUN_ALL)
def test_a_harmless_edit_is_not_caught(results: Results) -> None:
    """The seeded non-bug: with a docstring reworded, every named test and every named clause
    passes, so the checks above report NOT caught; this is also the baseline of each check."""
    verdict = results.harmless
    assert verdict.passed(sorted({e.clause for e in EXERCISES})), (verdict.failed, json.dumps(verdict.oracle))
    assert not any(verdict.caught_by_test(e.test) or verdict.caught_by_clause(e.clause) for e in EXERCISES)


@pytest.mark.timeout(RUN_ALL)
def test_each_model_finds_its_seeded_bug(results: Results) -> None:
    """Each model test passes only if the explorer or SPIN finds the bug (tests/models/)."""
    assert results.models == {node: "passed" for node in _model_nodes()}
