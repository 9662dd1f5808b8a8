"""What a pool can tell an observer: its lifecycle, step by step.

Pass `observer=callable` to Pool or ThreadPool and it is called with one of
the records below each time the pool does something that the spec constrains:
a state change, a worker started or reaped, a task handed out or taken back,
an outcome delivered, a job cancelled, a task past its timeout, the start of
shutdown and each sentinel sent. Tests check the
spec's invariants on this trace; learners can print it to watch a pool work.

The observer is called from the pool's own threads, so it must be quick and
thread-safe (appending to a list is), and must not raise: an exception from
it is printed and ignored. When no observer is given, nothing is built or
called.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import NamedTuple

from .lifecycle import PoolEvent, PoolState
from .messages import TaskKey


class StateChanged(NamedTuple):
    before: PoolState
    after: PoolState
    event: PoolEvent


class WorkerStarted(NamedTuple):
    worker_id: int
    pid: int | None


class TaskHandedOut(NamedTuple):
    worker_id: int
    job_id: int
    position: int


class TaskTakenBack(NamedTuple):
    """The worker had not started the task; the parent hands it out again (WORK-5, WORK-6)."""

    worker_id: int
    job_id: int
    position: int


class OutcomeDelivered(NamedTuple):
    worker_id: int
    job_id: int
    position: int
    success: bool


class WorkerReaped(NamedTuple):
    worker_id: int
    pid: int | None
    exitcode: int | None
    lost: tuple[TaskKey, ...]  # its oldest task, which it may have been running: WorkerLostError
    requeued: tuple[TaskKey, ...]  # the tasks behind it, never started: handed out again (LOST-3)


class JobCancelled(NamedTuple):
    """cancel() took the job's unstarted tasks away (CANCEL-1): they never run."""

    job_id: int
    dropped: tuple[TaskKey, ...]  # waiting in `ready` or taken back from inboxes: never run
    started: tuple[TaskKey, ...]  # held and started: they run to their end, outcomes discarded


class TaskTimedOut(NamedTuple):
    """The task ran past its timeout: its worker is being stopped (TIME-2)."""

    worker_id: int
    job_id: int
    position: int
    timeout: float


class ShutdownBegun(NamedTuple):
    """The pool is closed and every task has been offered: idle workers now get their sentinels."""

    live: tuple[int, ...]  # worker ids in the roster at that moment


class SentinelSent(NamedTuple):
    worker_id: int


Observation = (
    StateChanged
    | WorkerStarted
    | TaskHandedOut
    | TaskTakenBack
    | OutcomeDelivered
    | WorkerReaped
    | JobCancelled
    | TaskTimedOut
    | ShutdownBegun
    | SentinelSent
)
Observer = Callable[[Observation], object]


def safely(observer: Observer) -> Observer:
    """Wrap an observer so that its exceptions cannot break the pool."""

    def observe(observation: Observation) -> None:
        try:
            observer(observation)
        except Exception:
            traceback.print_exc()

    return observe
