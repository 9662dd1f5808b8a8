"""The stateful tests fail on seeded bugs: each bug below must be caught.

Each test breaks one guarantee of the real pool, runs the fork-pool state
machine of test_pool_machine with generation only (no shrinking, to stay
quick), and expects it to fail with the clause the bug breaks.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from refpool import roster as roster_module
from refpool.claims import SharedClaimWord
from refpool.roster import Handout, Roster

import test_pool_machine
from seeded import forget_one_sentinel

QUICK = settings(
    max_examples=300,
    stateful_step_count=20,
    phases=[Phase.generate],
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def expect_caught(monkeypatch: pytest.MonkeyPatch, *clauses: str) -> None:
    """The machine fails, with a message naming one of `clauses`."""
    monkeypatch.setattr(test_pool_machine, "WAIT", 3)  # a hang shows within seconds
    test_pool_machine.VIOLATIONS.clear()
    # A timing-dependent failure may surface as Hypothesis's Flaky: caught all the same.
    with pytest.raises((AssertionError, Flaky)):
        run_state_machine_as_test(test_pool_machine.ForkPoolMachine, settings=QUICK)
    seen = test_pool_machine.VIOLATIONS
    assert any(clause in message for message in seen for clause in clauses), seen


@pytest.mark.timeout(600)
def test_one_sentinel_too_few_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks that SHUT-2 is enforced by the stateful test."""
    forget_one_sentinel(monkeypatch)
    expect_caught(monkeypatch, "SHUT-")


@pytest.mark.timeout(600)
def test_a_worker_started_after_shutdown_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks that WORK-2 is enforced by the stateful test: workers are started in CLOSE
    though no task waits for one."""
    monkeypatch.setattr(
        roster_module,
        "workers_to_start",
        lambda processes, live, closing, waiting, terminating: 0 if terminating else processes - live,
    )
    # Each late worker is sent its sentinel, exits, and is replaced: join() may hang, too.
    expect_caught(monkeypatch, "WORK-2", "SHUT-4")


@pytest.mark.timeout(600)
def test_a_task_dropped_with_its_dead_worker_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks that LOST-1 and JOB-1 are enforced by the stateful test."""
    real = Roster.reap

    def forgetful(self: Roster, worker_id: int, exitcode: int | None) -> tuple[Any, Any, Handout]:
        record, _, handout = real(self, worker_id, exitcode)
        return record, None, handout  # its oldest task is neither failed nor run

    monkeypatch.setattr(Roster, "reap", forgetful)
    expect_caught(monkeypatch, "LOST-1")


@pytest.mark.timeout(600)
def test_a_take_back_the_worker_does_not_skip_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks that WORK-6 is enforced by the stateful test: the worker runs a task the pool
    took back and gave to an idle worker, so it runs twice. (Forked workers inherit the patch.)"""
    real = SharedClaimWord.claim

    def claim_regardless(self: SharedClaimWord, number: int) -> bool:
        real(self, number)
        return True

    monkeypatch.setattr(SharedClaimWord, "claim", claim_regardless)
    expect_caught(monkeypatch, "WORK-6", "JOB-1")


@pytest.mark.timeout(600)
def test_a_cancel_the_task_handler_is_not_told_of_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks that CANCEL-1 is enforced by the stateful test: the roster forgets to mark the
    job, so tasks the task handler had not offered yet are handed out after the cancel."""
    real = Roster.cancel

    def unmarked(self: Roster, job_id: int) -> Handout:
        handout = real(self, job_id)
        with self.cond:
            self.cancelled.discard(job_id)
        return handout

    monkeypatch.setattr(Roster, "cancel", unmarked)
    expect_caught(monkeypatch, "CANCEL-1")


@pytest.mark.timeout(600)
def test_a_timed_out_task_requeued_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks that TIME-2 is enforced by the stateful test: at expiry the running task goes
    back to `ready` with the ones behind it, and runs again elsewhere."""
    real = Roster._stop_for_timeout

    def requeue_it_too(self: Roster, record: Any, key: Any, timeout: float) -> None:
        held = record.held[key]
        real(self, record, key, timeout)
        self.ready.appendleft(roster_module.ReadyTask(key, held.encoded, held.size, held.timeout))

    monkeypatch.setattr(Roster, "_stop_for_timeout", requeue_it_too)
    expect_caught(monkeypatch, "TIME-2")
