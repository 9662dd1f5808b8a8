"""SPIN checks of models/pool.pml: the shutdown and worker-loss protocol, and its seeded bugs.

Each configuration is a full state-space search (see models/spin_check.py); the file takes
about a minute on two cores. A missing `spin` fails every test: CI installs it, and a skip
would hide a broken install.
"""

from __future__ import annotations

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


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_safety(workers: int) -> None:
    """Checks WORK-1, WORK-2, WORK-3, SHUT-1, SHUT-2, JOB-1 (assertions) and SHUT-3, SHUT-4
    (no invalid end state: every worker exits, every handler stops, join returns), with one
    crash anywhere (LOST-1, LOST-2)."""
    assert_clean(run_spin(workers, tasks=3, crashes=1))


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_termination(workers: int) -> None:
    """Checks SHUT-3, SHUT-4 and JOB-1 as the LTL property `done`: every run reaches
    join() returned with every task settled."""
    assert_clean(run_spin(workers, tasks=3, crashes=1, ltl="done"))


@pytest.mark.parametrize(("workers", "crashes"), [(1, 1), (2, 0)])
@pytest.mark.parametrize("ltl", [None, "done"])
def test_terminate(workers: int, crashes: int, ltl: str | None) -> None:
    """Checks SHUT-5 (terminate() at any moment, from another thread, fails what is
    unsettled), WORK-2 (no worker starts after it), JOB-1 and SHUT-4 (join waits for it).
    Two workers with a crash and terminate is a 9M-state search: too slow for every push."""
    assert_clean(run_spin(workers, tasks=3, crashes=crashes, ltl=ltl, terminate=True))


# What each seeded bug breaks first: the assertion pan reports in a safety run.
FIRST_VIOLATION = {
    "BUG_ONE_SENTINEL_TOO_FEW": "sentinels_sent==live_at_shutdown",  # SHUT-2
    "BUG_START_AFTER_CLOSE": "!(shutdown_begun)&& !(terminating)",  # WORK-2
    "BUG_DROP_TASK_ON_CRASH": "(ci_n==1)",  # WORK-3
    "BUG_SENTINEL_OVERTAKES_TASK": "!(sentinel_written[",  # SHUT-1
    "BUG_NO_HANDOUT_ON_OUTCOME": "(prepared==handed)",  # WORK-5
}
# A task written after its worker's sentinel is failed as lost when the worker exits: the run
# still ends with every task settled, so only the assertion sees this bug, not `done`.
HANGS = frozenset(FIRST_VIOLATION) - {"BUG_SENTINEL_OVERTAKES_TASK"}


@pytest.mark.parametrize("bug", SEEDED_BUGS)
def test_seeded_bug_is_found(bug: str) -> None:
    """Checks that the model catches each seeded bug: BUG_ONE_SENTINEL_TOO_FEW breaks SHUT-2
    and SHUT-3, BUG_START_AFTER_CLOSE breaks WORK-2 and SHUT-3, BUG_DROP_TASK_ON_CRASH breaks
    WORK-3 and JOB-1 (LOST-1), BUG_SENTINEL_OVERTAKES_TASK breaks SHUT-1, and
    BUG_NO_HANDOUT_ON_OUTCOME breaks WORK-5 and hangs. Each is found by an assertion; each
    that hangs the pool or leaves a task unsettled is found again by the LTL property `done`
    alone (pan -A ignores the assertions)."""
    safety = run_spin(2, tasks=3, crashes=1, defines=[bug])
    assert safety.errors >= 1, safety.summary()
    assert FIRST_VIOLATION[bug] in safety.first_error, safety.summary()
    assert safety.trail, "no counterexample was replayed"

    liveness = run_spin(2, tasks=3, crashes=1, defines=[bug], ltl="done", ignore_assertions=True)
    if bug in HANGS:
        assert liveness.errors >= 1, liveness.summary()
        assert "acceptance cycle" in liveness.first_error, liveness.summary()
    else:
        assert liveness.errors == 0, liveness.summary()


def test_join_must_wait_for_a_terminate_that_begins_during_it() -> None:
    """Checks SHUT-4 and JOB-1: a join() that waits only for a terminate() begun before it
    (JOIN_MISSES_LATE_TERMINATE, as refpool's core.join does) can return while that
    terminate() has not yet failed the unsettled jobs."""
    result = run_spin(2, tasks=3, crashes=0, defines=["JOIN_MISSES_LATE_TERMINATE"], terminate=True)
    assert result.errors >= 1, result.summary()
    assert "nsettled==submitted" in result.first_error, result.summary()


def test_missing_spin_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks that the runner names the missing tool instead of skipping the WORK/SHUT checks."""
    monkeypatch.setenv("PATH", "")
    with pytest.raises(SpinNotInstalled, match="spin"):
        run_spin(1)
