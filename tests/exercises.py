"""The break-it exercises of spec/exercises.md as data: each edit a matrix mutant, and what catches it.

This module is the one place the exercises are written. spec/exercises.md is
rendered from it (`python -m tests.exercises_page`), and tests/test_exercises.py
applies each edit to a copy of the committed tree and shows that every check
named here catches it, so neither the page nor the data can drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.matrix.catalogue import MUTANTS
from tests.matrix.mutant import Mutant
from tests.matrix.run import MODEL_TESTS

EXPLORER = "explorer"  # models/pool_model.py, searched by models/explore.py
SPIN = "spin"  # models/pool.pml, checked by SPIN through models/spin_check.py
# The seeded-bug test of each model: the matrix's (tests/matrix/run.py).
EXPLORER_TEST = MODEL_TESTS[EXPLORER]
SPIN_TEST = MODEL_TESTS[SPIN]


@dataclass(frozen=True)
class ModelCheck:
    """The same bug seeded in a model by a flag, and the bounds the model is searched within."""

    model: str  # EXPLORER or SPIN
    bug: str  # the seeded-bug flag: a name in pool_model.BUGS, or a macro of pool.pml
    breaks: str  # the clause (invariant or assertion) the model reports broken first
    workers: int
    tasks: int
    crashes: int
    test: str  # the pytest node id that passes only if the model finds the bug

    @property
    def command(self) -> str:
        """What a learner runs to watch the model find the bug."""
        if self.model == EXPLORER:
            bounds = f"--workers {self.workers} --tasks {self.tasks} --crashes {self.crashes}"
            return f"python -m models.explore {bounds} --bug {self.bug}"
        return (
            f"python -m models.spin_check -n {self.workers} -t {self.tasks} -c {self.crashes} -D {self.bug}"
        )

    @property
    def matrix_name(self) -> str:
        """How tests/matrix names it in a mutant's `model_bugs`."""
        return f"{self.model}:{self.bug}"


@dataclass(frozen=True)
class Exercise:
    title: str
    edit: Mutant  # the exact text replacement; a matrix mutant, so the matrix and the page agree
    story: str  # why this part matters
    predict: str  # what the learner should expect to go wrong
    test: str  # the pytest node id that fails with the edit in place
    test_sees: str
    models: tuple[ModelCheck, ...]
    clause: str  # the spec clause whose `refpool conform` check fails with the edit in place
    clause_sees: str

    @property
    def conform_command(self) -> str:
        return f"refpool conform {self.edit.target} --clauses {self.clause} --fuzz-examples 0"


def mutant(name: str) -> Mutant:
    """The matrix mutant called `name` (tests/matrix/catalogue.py)."""
    found = [m for m in MUTANTS if m.name == name]
    if len(found) != 1:
        raise LookupError(f"tests/matrix has no mutant named {name!r}")
    return found[0]


def _explorer(bug: str, breaks: str, workers: int, tasks: int, crashes: int, length: int) -> ModelCheck:
    # The parameter id test_python_model.py gives its SEEDED row (maxtasks None, depth 2).
    node = f"{EXPLORER_TEST}[{bug}-w{workers}-t{tasks}-c{crashes}-mNone-d2-{breaks}-{length}]"
    return ModelCheck(EXPLORER, bug, breaks, workers, tasks, crashes, node)


def _spin(bug: str, breaks: str) -> ModelCheck:
    # test_seeded_bug_is_found runs each bug with 2 workers, 3 tasks and 1 crash.
    return ModelCheck(SPIN, bug, breaks, 2, 3, 1, f"{SPIN_TEST}[{bug}]")


EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        title="Remove a sentinel",
        edit=mutant("one-sentinel-too-few"),
        story=(
            "A worker blocks on its inbox until something comes. When the pool closes, the roster "
            "writes one sentinel to each worker as soon as it is idle (SHUT-2); a worker exits only "
            "when it reads one. `Roster.serve_all` visits every worker, least busy first, and that "
            "is where an idle worker of a closing pool gets its sentinel. Skip one worker in that "
            "loop and it is never told to stop."
        ),
        predict=(
            "After `close()`, the least busy worker (the idle one) gets no sentinel. It waits for "
            "ever, so it never exits, and `join()`, which waits for every worker, never returns."
        ),
        test="tests/test_roster.py::test_idle_workers_get_their_sentinel_when_closing_busy_ones_when_idle",
        test_sees="the idle worker of a closing roster is sent nothing, where it should get `SHUTDOWN`",
        models=(
            _explorer("one_sentinel_too_few", "SHUT-2", workers=2, tasks=2, crashes=0, length=7),
            _spin("BUG_ONE_SENTINEL_TOO_FEW", "SHUT-2"),
        ),
        clause="SHUT-4",
        clause_sees="`join()` after `close()` does not return within 10 s",
    ),
    Exercise(
        title="Forget to replace a worker",
        edit=mutant("exit-not-reported"),
        story=(
            "A pool promises `processes` workers for as long as it runs (WORK-1). When a worker "
            "exits (killed, crashed, or retired by `maxtasksperchild`), the result handler reaps it: "
            "it fails the worker's lost task and hands out again the tasks behind it. Then it tells "
            "the worker handler, whose only job is to start the replacement. That one call is the "
            "whole link between a worker exiting and a new one starting."
        ),
        predict=(
            "Each worker that exits is reaped correctly (its task fails with `WorkerLostError`), but "
            "the pool shrinks by one worker each time and never grows back; with one worker, the "
            "first death leaves the remaining tasks waiting for ever."
        ),
        test="tests/test_lost_workers.py::test_sigkill_during_map_fails_that_job_and_the_pool_goes_on[fork]",
        test_sees="after a worker is killed, the pool does not return to 2 live workers (it waits 30 s)",
        models=(_explorer("reap_not_reported", "WORK-1", workers=2, tasks=2, crashes=1, length=3),),
        clause="WORK-1",
        clause_sees="after a worker is killed, 2 live workers after 10 s, not 3",
    ),
    Exercise(
        title="Drop a result",
        edit=mutant("drop-task-on-crash"),
        story=(
            "Every job must settle (JOB-1): the caller's `get()` waits for an outcome. When a worker "
            "dies mid-task, no outcome for that task will ever come from it, so the pool makes one: "
            "`Roster.reap` names the worker's oldest held task, the only one it may have been "
            "running, as lost, and the result handler delivers `WorkerLostError` to its job "
            "(LOST-1). CPython's pool forgets it, and `map()` hangs (bpo-22393)."
        ),
        predict=(
            "Kill a worker while it runs a task: the tasks behind it still run elsewhere, but the "
            "task it was running is neither failed nor run again. Its outcome never reaches its "
            "job, and `get()` without a timeout waits for ever."
        ),
        test="tests/test_roster.py::test_a_dead_workers_oldest_task_is_lost_and_the_ones_behind_it_go_to_others",
        test_sees="`Roster.reap` returns no lost task for a worker that held three",
        models=(
            _explorer("drop_task_on_crash", "WORK-3", workers=2, tasks=2, crashes=1, length=4),
            _spin("BUG_DROP_TASK_ON_CRASH", "WORK-3"),
        ),
        clause="LOST-1",
        clause_sees=(
            "a worker called `os._exit(3)` mid-task and its job never settled: `get()` timed out after 10 s"
        ),
    ),
    Exercise(
        title="Claim a task twice",
        edit=mutant("take-back-not-skipped"),
        story=(
            "A process worker holds up to 8 tasks ahead in its inbox. The parent may take back the "
            "ones it has not started: to give them to an idle worker (WORK-5), or because their job "
            "was cancelled. Who wins if the worker reaches a task just as the parent takes it back? "
            "The claim word decides (refpool/claims.py): under a lock the worker claims task n only "
            "if n is above `revoked`, else it skips it (WORK-6). Remove the skip and the worker runs "
            "tasks that are no longer its own."
        ),
        predict=(
            "A task taken back from a worker runs in the worker it was given to, and then again in "
            "the worker it was taken from, once that one gets to it: its outcome is delivered twice. "
            "A task taken back because its job was cancelled runs although it should never start."
        ),
        test="tests/test_pipelining.py::test_a_taken_back_task_runs_once_in_the_worker_it_was_given_to[fork]",
        test_sees="the pool's trace shows more outcomes delivered than the 61 tasks: some ran twice",
        models=(
            _explorer("take_back_without_skip", "WORK-6", workers=2, tasks=3, crashes=0, length=10),
            _spin("BUG_TAKE_BACK_WITHOUT_SKIP", "WORK-6"),
        ),
        clause="BUF-6",
        clause_sees=(
            "the tasks of a buffered `imap` taken back when its iterator was closed run anyway "
            "(WORK-6 has no check of its own in the oracle: a take-back is seen from outside "
            "only through what it is for)"
        ),
    ),
)
