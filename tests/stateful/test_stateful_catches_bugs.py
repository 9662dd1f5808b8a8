"""The stateful tests fail on seeded bugs: each bug below must be caught.

Each test breaks one guarantee of the real pool, runs the fork-pool state
machine of test_pool_machine with generation only (no shrinking, to stay
quick), and expects it to fail with the clause the bug breaks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
import test_pool_machine
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from refpool import roster as roster_module
from refpool.core import PoolCore
from refpool.roster import Roster, WorkerRecord

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


def patch(
    monkeypatch: pytest.MonkeyPatch, name: str, make: Callable[[Callable[..., object]], object]
) -> None:
    monkeypatch.setattr(Roster, name, make(getattr(Roster, name)))


@pytest.mark.timeout(600)
def test_one_sentinel_too_few_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks that SHUT-2 is enforced by the stateful test."""
    patch(monkeypatch, "begin_shutdown", lambda real: lambda self: real(self)[1:])
    expect_caught(monkeypatch, "SHUT-")


@pytest.mark.timeout(600)
def test_a_worker_started_after_shutdown_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks that WORK-2 is enforced by the stateful test."""
    # Both guards go: the roster's count, and the worker handler stopping at shutdown.
    monkeypatch.setattr(
        roster_module,
        "workers_to_start",
        lambda processes, live, begun, terminating: 0 if terminating else processes - live,
    )
    monkeypatch.setattr(PoolCore, "_after_shutdown", lambda self: None)
    # The late worker gets no sentinel, so join() may hang before the trace is read.
    expect_caught(monkeypatch, "WORK-2", "SHUT-4")


@pytest.mark.timeout(600)
def test_a_task_dropped_with_its_dead_worker_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Checks that LOST-1 and JOB-1 are enforced by the stateful test."""

    def forgetful(real: Callable[..., WorkerRecord | None]) -> object:
        def remove(self: Roster, worker_id: int, exitcode: int | None) -> WorkerRecord | None:
            record = real(self, worker_id, exitcode)
            return None if record is None else replace(record, held={})

        return remove

    patch(monkeypatch, "remove", forgetful)
    expect_caught(monkeypatch, "LOST-1")
