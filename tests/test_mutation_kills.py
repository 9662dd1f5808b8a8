"""Tests that kill mutants which survived every other test in cosmic-ray's run of the core
(tests/mutation/README.md); each names the mutant it kills."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest

from refpool.errors import WorkerLostError
from refpool.jobs import JobCache
from refpool.lifecycle import TRANSITIONS, Lifecycle, PoolEvent, PoolState, PoolStateError, legal_events
from refpool.messages import Outcome, WorkerGone
from refpool.result_handler import ResultHandler
from refpool.roster import Outgoing, ReadyTask, Roster, TaskKey

S, E = PoolState, PoolEvent

# --- lifecycle.legal_events: only CrossHair called it -----------------------------------------


def test_legal_events_are_what_the_stdlib_pool_allows_in_each_state() -> None:
    """Kills `s == state` -> `s != state`, `s <= state`, ... in legal_events (the ordering ones
    raise TypeError on enums; `!=` returns every other state's events)."""
    assert legal_events(S.INIT) == {E.STARTED, E.TERMINATE}
    assert legal_events(S.RUN) == {E.SUBMIT, E.CLOSE, E.TERMINATE}
    assert legal_events(S.CLOSE) == {E.CLOSE, E.JOIN, E.TERMINATE}
    assert legal_events(S.TERMINATE) == {E.CLOSE, E.JOIN, E.TERMINATE}


@pytest.mark.parametrize(("state", "event"), list(itertools.product(PoolState, PoolEvent)))
def test_an_event_is_legal_exactly_when_firing_it_succeeds(state: PoolState, event: PoolEvent) -> None:
    """legal_events is what the docs and the models read: it must agree with Lifecycle.fire."""
    lifecycle = Lifecycle()
    lifecycle._state = state  # only tests reach in: no public way to every state
    if event in legal_events(state):
        lifecycle.fire(event)
        assert lifecycle.state is TRANSITIONS[(state, event)]
    else:
        with pytest.raises(PoolStateError):
            lifecycle.fire(event)
        assert lifecycle.state is state


# --- result_handler._handle: a dead worker is marked before its last outcomes are settled ------


class OneWorkerHandle:
    """A worker handle that records what it is sent; the process behind it has exited."""

    in_process = False
    inbox_budget = None

    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id
        self.pid = 4000 + worker_id
        self.sent: list[Outgoing] = []

    @property
    def claims(self) -> Any:
        raise AssertionError("nothing is taken back from a worker that is gone")

    def send(self, items: Sequence[Outgoing]) -> None:
        self.sent.extend(items)

    def kill(self) -> None: ...
    def stop_now(self) -> None: ...
    def join(self) -> None: ...
    def is_alive(self) -> bool:
        return False


class PlainTransport:
    """Payloads travel as they are; nothing to wake or close."""

    def decode(self, payload: Any) -> Any:
        return payload

    def wake(self) -> None: ...
    def release(self, handle: Any) -> None: ...


class RecordingCache(JobCache):
    def __init__(self) -> None:
        super().__init__()
        self.delivered: list[tuple[TaskKey, bool, Any]] = []

    def deliver(self, job_id: int, index: int, success: bool, value: Any) -> None:
        self.delivered.append(((job_id, index), success, value))


def test_a_task_ready_when_a_worker_dies_is_not_failed_with_its_last_outcome() -> None:
    """A worker's last outcome and its death are read in one batch, while a task waits in
    `ready`. Settling the outcome must not hand that task to the dead worker: it would then
    be the oldest task the worker held, and fail with WorkerLostError though it never ran.
    Kills the removal of `self._roster.exited(gone.worker_id)` in ResultHandler._handle."""
    roster = Roster(1, None, 1)  # one worker, one task in flight: the second task waits
    with roster.cond:
        handle = OneWorkerHandle(roster.new_worker_id())
        roster.add(handle)
    roster.offer([ReadyTask((0, 0), "wire(0, 0)", 10), ReadyTask((0, 1), "wire(0, 1)", 10)])[0].send()
    assert [task.key for task in roster.ready] == [(0, 1)]
    cache = RecordingCache()
    handler = ResultHandler(roster, PlainTransport(), cache, worker_gone=lambda: None, finished=lambda: None)  # type: ignore[arg-type]

    handler._handle([(handle.worker_id, Outcome(0, 0, True, 0, None)), WorkerGone(handle.worker_id, 0)])

    assert cache.delivered == [((0, 0), True, 0)]  # and no WorkerLostError for (0, 1)
    assert not any(isinstance(value, WorkerLostError) for _, _, value in cache.delivered)
    assert [task.key for task in roster.ready] == [(0, 1)]  # it waits for the replacement
    assert handle.sent == [(1, "wire(0, 0)")]  # nothing written to it after its one task
