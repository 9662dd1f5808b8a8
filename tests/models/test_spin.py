"""SPIN checks of models/pool.pml: the task protocol (several tasks in flight, claims, take-back),
worker loss and shutdown, cancelling a job, per-task timeouts and the bounded imap, and the seeded
bugs that break them.

Every configuration is a complete search (see models/spin_check.py); the file takes about three
minutes on two cores, much of it compiling a verifier per configuration. A missing
`spin` fails every test: CI installs it, and a skip would hide a broken install.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest

from models.spin_check import SEEDED_BUGS, Result, SpinNotInstalled, require_tools, run_spin


@pytest.fixture(autouse=True)
def spin_installed() -> None:
    try:
        require_tools()
    except SpinNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)


def assert_clean(result: Result) -> None:
    assert result.complete, f"the search was not complete:\n{result.output}"
    assert result.errors == 0, f"{result.summary()}\n{result.trail}"
    assert result.states_stored > 0


class Bounds(NamedTuple):
    workers: int
    tasks: int
    crashes: int
    depth: int = 2
    write_later: bool = False
    any_order: bool = False
    cancel: int = 0
    timeouts: int = 0
    buffer: int = 0

    def check(self, ltl: str | None = None) -> Result:
        return run_spin(
            self.workers,
            tasks=self.tasks,
            crashes=self.crashes,
            depth=self.depth,
            write_later=self.write_later,
            any_order=self.any_order,
            cancel=self.cancel,
            timeouts=self.timeouts,
            buffer=self.buffer,
            ltl=ltl,
        )


# What each configuration covers, beyond what every one checks. States stored, as measured
# (safety; `done` stores about as many): a big change means the model changed.
CONFIGURATIONS = {
    # 17K states. One worker: its death (while it runs a task, or between tasks) fails its oldest
    # task and leaves the one behind it in `ready` for the replacement (LOST-1, LOST-3), which is
    # started even once the pool is closing, for that task only (WORK-2).
    "w1-t3-c1": Bounds(1, 3, 1),
    # 0.7M states. Two workers: an idle one takes back the other's unstarted task, racing its
    # claim; the victim skips it; a death anywhere, also of a victim or while a task waits in
    # `ready`; sentinels to idle workers at begin_closing and to busy ones as they become idle.
    "w2-t3-c1": Bounds(2, 3, 1),
    # 0.5M states. Three workers, four tasks: the least busy worker gets each task, ties to the
    # first in the roster; a take-back among three; several workers idle at once when closing.
    "w3-t4-c0": Bounds(3, 4, 0),
    # 0.65M states. Workers hold up to three tasks: a take-back leaves a victim two started tasks
    # (stalled: it takes nothing new until it holds nothing) and a later take-back from it finds
    # nothing to take.
    "w2-t5-d3": Bounds(2, 5, 0, depth=3),
    # 1.3M states. Each worker's outgoing queue, written at any later moment by whichever thread
    # holds its `writing` lock: the same results as writing in the roster step (SHUT-1: a
    # sentinel stays behind every task queued before it).
    "w2-t3-c1-write-later": Bounds(2, 3, 1, write_later=True),
    # 1.7M states. Ties between equally busy workers (hand-outs, victims, the order of serving)
    # broken every possible way: nothing depends on refpool's tie-break.
    "w2-t3-c1-any-order": Bounds(2, 3, 1, any_order=True),
    # 3.7M states. Two victims with two tasks each: a take-back that finds the busiest worker's
    # tasks all started goes on to the next one.
    "w3-t5-c0": Bounds(3, 5, 0),
    # 0.85M states. Job A (tasks 1, 2) cancelled at any moment, and one task's time up at any
    # moment, each or both or neither: worker 0 holds tasks 1 (A) and 3 (B), so a cancel takes 3
    # back and hands it out again, and leaves worker 0 stalled on 1 if it had started it; an expiry
    # kills a worker still on its task, or finds it gone on to the next and kills nothing; the
    # killed worker's outcome is read before it is seen to have exited, or not; a cancelled job's running
    # task times out.
    "w2-t3-c0-cancel2-timeouts1": Bounds(2, 3, 0, cancel=2, timeouts=1),
    # 0.26M states. The same with a crash, one worker: a cancelled job's running task is lost with
    # its worker (the error is discarded); a task whose worker crashed times out before the death
    # is seen (it fails once); the replacement takes what was taken back.
    "w1-t3-c1-cancel2-timeouts1": Bounds(1, 3, 1, cancel=2, timeouts=1),
    # 0.14M states. imap with buffersize 2, consumed in order while the pool runs, a crash included.
    "w2-t3-c1-buffer2": Bounds(2, 3, 1, buffer=2),
}
# `done` with crashes and without: a worker that may still crash is never stuck for good (its
# crash is always enabled), so a pool that hangs unless a worker crashes is a terminal state,
# seen by `done`, only when no crash is left to happen.
LIVENESS = {
    **{name: CONFIGURATIONS[name] for name in ("w1-t3-c1", "w2-t3-c1", "w3-t4-c0")},
    "w1-t3-c0": Bounds(1, 3, 0),  # 1.6K states
    "w2-t3-c0": Bounds(2, 3, 0),  # 28K states
    # 46K states. Cancel and expiry (w2-t3-c0-cancel2-timeouts1 would add about 10 s).
    "w1-t3-c0-cancel2-timeouts1": Bounds(1, 3, 0, cancel=2, timeouts=1),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_safety(name: str) -> None:
    """Checks, in every reachable state: WORK-1 (never more than N workers; back to N while
    the pool may grow), WORK-2 (none started after terminate; once closing, no more than the
    tasks waiting in ready), WORK-3 (each task held by at most one worker, an unsettled one by
    exactly one or waiting in ready; at most DEPTH; recorded before it is written), WORK-5 (a
    task waits in ready only while no worker can take it; while a worker is idle, every task
    another holds but its oldest has started), WORK-6 (no task starts twice; a task taken back
    is never started by its victim; outcomes come in order), LOST-1 and LOST-3 (a death is
    handled once all the worker sent is read; it fails one task, the oldest; the ones behind
    it had not started), SHUT-1 (a sentinel only once closing, to a worker that holds nothing,
    and nothing after it), SHUT-2 (never two; once closing, none idle without one), JOB-1 (no
    task settles twice; all have settled once joined; without crashes every task not cancelled
    has run once); and SHUT-3, SHUT-4 (no invalid end state: every worker exits, every handler
    stops, join returns). With cancel: CANCEL-1 (the job settles once, at the cancel; none of
    its tasks starts after it, waits in ready or is held unless it is running; later outcomes
    are discarded) and CANCEL-3 (the other job's tasks taken back with it run exactly once).
    With timeouts: TIME-1 (a task's time runs from its claim) and TIME-2 (the tasks behind the
    timed one are taken back and run once elsewhere; the killed worker is given nothing; only
    the timed task fails, once, and never runs again; one that finished keeps its outcome). With
    the buffered imap: BUF-1 (never more than buffersize tasks drawn and not taken)."""
    assert_clean(CONFIGURATIONS[name].check())


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(LIVENESS))
def test_termination(name: str) -> None:
    """Checks SHUT-3, SHUT-4 and JOB-1 as the LTL property `done`: every run reaches join()
    returned with every task settled, crashes, take-backs, cancels (CANCEL-3) and timeouts
    (TIME-2) included (LOST-2: the pool goes on)."""
    assert_clean(LIVENESS[name].check(ltl="done"))


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("workers", "crashes", "ltl"), [(1, 1, None), (1, 1, "done"), (2, 0, None)], ids=str)
def test_terminate(workers: int, crashes: int, ltl: str | None) -> None:
    """Checks SHUT-5 (terminate() at any moment, from another thread, fails what is
    unsettled), WORK-2 (no worker starts after it), JOB-1 and SHUT-4 (join waits for it).
    One worker with a crash: 1.3M states; two without: 2.7M. Two workers with a crash and
    terminate is a 58M-state search, and `done` on two workers takes 25 s: too slow for
    every push."""
    assert_clean(run_spin(workers, tasks=3, crashes=crashes, ltl=ltl, terminate=True))


# What each seeded bug breaks first: the assertion pan reports in a safety run of w2-t3-c1.
FIRST_VIOLATION = {
    # SHUT-2: once closing, an idle worker has no sentinel.
    "BUG_ONE_SENTINEL_TOO_FEW": "!(closing)|| !(((((live[ci_w]",
    # WORK-2: once closing, more workers started than tasks wait.
    "BUG_START_AFTER_CLOSE": "!(closing)||(k<=nready)",
    # WORK-3: an unsettled task held by no worker and not in ready.
    "BUG_DROP_TASK_ON_CRASH": "((ci_n+ci_r)==1)",
    # LOST-3: a death fails a second task.
    "BUG_FAIL_ALL_ON_CRASH": "(lost_here==0)",
    # SHUT-1: a task taken back, still queued, written after the sentinel that overtook it.
    "BUG_SENTINEL_OVERTAKES_TASK": "!(sentinel_written[",
    # SHUT-2: the freed worker is not served, so once closing it stays idle without a sentinel.
    "BUG_NO_HANDOUT_ON_OUTCOME": "!(closing)|| !(((((live[ci_w]",
    # WORK-5: a worker is idle while another holds a task unstarted behind its oldest.
    "BUG_NO_TAKE_BACK": "!(ci_idle)||(ci_n==0)",
    # WORK-6: a worker starts a task that was taken back from it (claims.py, interleaving 3).
    "BUG_CLAIM_WITHOUT_LOCK": "held_at_start",
    # WORK-6: likewise (claims.py, interleaving 4).
    "BUG_TAKE_BACK_WITHOUT_SKIP": "held_at_start",
    # CANCEL-1: once job A (tasks 1, 2) is cancelled, a worker still holds a task of it unstarted.
    "BUG_CANCEL_LEAVES_INBOX": "!((cancelled&&(ci_t<=2)))",
    # WORK-3, CANCEL-3: an unsettled task of job B held by no worker and not in ready.
    "BUG_CANCEL_DROPS_OTHERS": "((ci_n+ci_r)==1)",
    # WORK-3, TIME-2: the timed task's outcome, written before the kill, comes from a worker that
    # no longer holds it: it went back to ready at the expiry and to the other worker, to run again.
    "BUG_TIMEOUT_REQUEUES_RUNNING": "(held_task[((rw*2)+0)]==rt)",
    # BUF-1: three tasks drawn whose results the caller has not taken, with buffersize 2.
    "BUG_REFILL_BEFORE_TAKE": "((submitted-taken)<=2)",
}
# The bugs that hang the pool or leave a task unsettled, found again by the LTL property `done`,
# with the workers and crashes to check them with. No crash where the pool hangs without one
# (see LIVENESS). One worker for BUG_ONE_SENTINEL_TOO_FEW: with two, the worker skipped at
# begin_closing is served again, and sent its sentinel, once the other has exited; alone, it
# waits forever. The other bugs leave every run ending with every task settled (but wrongly:
# run twice, failed though it never started, or written after a sentinel), so only the
# assertions see them.
HANGS = {
    "BUG_ONE_SENTINEL_TOO_FEW": (1, 0),
    "BUG_START_AFTER_CLOSE": (2, 0),
    "BUG_DROP_TASK_ON_CRASH": (2, 1),
    "BUG_NO_HANDOUT_ON_OUTCOME": (2, 0),
    "BUG_CANCEL_DROPS_OTHERS": (2, 0),
}
CLAIM_BUGS = ("BUG_CLAIM_WITHOUT_LOCK", "BUG_TAKE_BACK_WITHOUT_SKIP")


@pytest.mark.parametrize("bug", SEEDED_BUGS)
def test_seeded_bug_is_found(bug: str) -> None:
    """Checks that the model catches each seeded bug: BUG_ONE_SENTINEL_TOO_FEW breaks SHUT-2
    (and SHUT-3 with one worker), BUG_START_AFTER_CLOSE breaks WORK-2 and SHUT-3,
    BUG_DROP_TASK_ON_CRASH breaks WORK-3 and JOB-1 (LOST-1), BUG_FAIL_ALL_ON_CRASH breaks LOST-3,
    BUG_SENTINEL_OVERTAKES_TASK breaks SHUT-1, BUG_NO_HANDOUT_ON_OUTCOME breaks WORK-5 and SHUT-2
    and hangs, BUG_NO_TAKE_BACK breaks WORK-5, BUG_CLAIM_WITHOUT_LOCK and
    BUG_TAKE_BACK_WITHOUT_SKIP break WORK-6, BUG_CANCEL_LEAVES_INBOX breaks CANCEL-1,
    BUG_CANCEL_DROPS_OTHERS breaks CANCEL-3 and JOB-1, BUG_TIMEOUT_REQUEUES_RUNNING breaks TIME-2
    and WORK-6, and BUG_REFILL_BEFORE_TAKE breaks BUF-1 (each of the last four turns its feature
    on: job A of tasks 1 and 2, one expiry, buffersize 2). Each is found by an assertion; each
    that hangs the pool or leaves a task unsettled is found again by the LTL property `done`
    alone (pan -A ignores the assertions)."""
    safety = run_spin(2, tasks=3, crashes=1, defines=[bug], optimize=False)
    assert safety.errors >= 1, safety.summary()
    assert FIRST_VIOLATION[bug] in safety.first_error, safety.summary()
    assert safety.trail, "no counterexample was replayed"
    if bug in HANGS:
        workers, crashes = HANGS[bug]
        liveness = run_spin(
            workers,
            tasks=3,
            crashes=crashes,
            defines=[bug],
            ltl="done",
            ignore_assertions=True,
            optimize=False,
        )
        assert liveness.errors >= 1, liveness.summary()
        assert "acceptance cycle" in liveness.first_error, liveness.summary()


@pytest.mark.parametrize("bug", CLAIM_BUGS)
def test_claim_bug_runs_a_task_twice(bug: str) -> None:
    """Checks WORK-6 and JOB-1 with the check at a task's start left out (START_UNCHECKED):
    a claim that a take-back can interleave with, or a worker that does not skip a task taken
    back, makes a task run twice, once in its victim and once in the worker it went to."""
    result = run_spin(2, tasks=3, crashes=1, defines=[bug, "START_UNCHECKED"], optimize=False)
    assert result.errors >= 1, result.summary()
    assert "(runs[t]==0)" in result.first_error, result.summary()


def test_cancel_bug_starts_a_cancelled_task() -> None:
    """Checks CANCEL-1 at a task's start, with the invariant that finds BUG_CANCEL_LEAVES_INBOX
    first left out (CANCEL_UNCHECKED): a task of the cancelled job left in a worker's inbox is
    claimed and started after the cancel."""
    result = run_spin(
        2, tasks=3, crashes=1, defines=["BUG_CANCEL_LEAVES_INBOX", "CANCEL_UNCHECKED"], optimize=False
    )
    assert result.errors >= 1, result.summary()
    assert "!((cancelled&&(t<=2)))" in result.first_error, result.summary()


def test_a_killed_worker_must_be_given_no_task() -> None:
    """Checks TIME-2 against the timeout design without its fix (TIMEOUT_KILLED_TAKES_TASKS): a
    worker killed at its task's expiry stays in the roster until it is seen to have exited; if the outcome
    it wrote before the kill is read first, it is idle, takes back another worker's unstarted task
    and is given it, and that task, never started, fails with WorkerLostError when the worker is
    reaped. The roster must give a killed worker nothing (the model's default)."""
    result = run_spin(
        2, tasks=3, crashes=0, timeouts=1, defines=["TIMEOUT_KILLED_TAKES_TASKS"], optimize=False
    )
    assert result.errors >= 1, result.summary()
    assert "(held_task[((rw*2)+0)]==timed_task)" in result.first_error, result.summary()


def test_join_must_wait_for_a_terminate_that_begins_during_it() -> None:
    """Checks SHUT-4 and JOB-1: a join() that waits only for a terminate() begun before it
    (JOIN_MISSES_LATE_TERMINATE) can return while that terminate() has not yet failed the
    unsettled jobs."""
    result = run_spin(
        2, tasks=3, crashes=0, defines=["JOIN_MISSES_LATE_TERMINATE"], terminate=True, optimize=False
    )
    assert result.errors >= 1, result.summary()
    assert "nsettled==submitted" in result.first_error, result.summary()


def test_missing_spin_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks that the runner names the missing tool instead of skipping the WORK/SHUT checks."""
    monkeypatch.setenv("PATH", "")
    with pytest.raises(SpinNotInstalled, match="spin"):
        run_spin(1)
