"""The roster: which workers exist, and which tasks each one holds.

This is how refpool never loses a task to a dead worker (CPython hangs here:
bpo-22393). The parent assigns every task to one worker and records it here
*before* sending it, so ownership is never in doubt: when a worker dies, the
tasks recorded for it are exactly the ones it may have been running, and their
jobs fail with WorkerLostError. Every worker has its own inbox; there is no
shared task queue from which a dying worker could take a task unseen.

Flow control: a worker holds at most `depth` tasks (core.TASKS_IN_FLIGHT), so
a crash fails at most `depth` tasks. Tasks the task handler has prepared
(encoded) while no worker was free wait in `ready`: for imap at most
`ready_limit` (one per worker), so imap reads its input no faster than
workers take it (API-5); for work whose calls are in memory already (apply,
map) the task handler may prepare more (see task_handler.py).

Who hands tasks out: whichever thread sees a worker become free. The result
handler, reading an outcome, hands that worker the next ready task before it
settles the job, so the worker need not wait for a second thread to wake (the
round trip between tasks is the cost of holding one task at a time). The task
handler hands out a task itself when a worker is idle, and the worker handler
gives a ready task to each worker it starts. The thread that assigns a task
writes it, after leaving `cond`; the worker's `writing` lock, taken under
`cond`, keeps a sentinel from overtaking a task assigned before it.

All the state is guarded by one condition variable, `cond`; the task handler
waits on it for room in `ready`, and shutdown for `ready` to empty.

Invariants (spec WORK-1, WORK-2, WORK-3, WORK-5, SHUT-1):
- at most `processes` workers are in the roster;
- every task handed out is held by exactly one worker until its outcome has
  been read or the worker has been removed;
- a worker holds at most `depth` tasks and is handed at most `maxtasks` in all;
- once shutdown has begun or the pool is terminating, no worker is added;
- a task waits in `ready` only while no worker can take it (WORK-5);
- no task is written to a worker after its sentinel (SHUT-1; see `_assign`).
"""

from __future__ import annotations

import collections
import contextlib
import threading
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from .observer import (
    Observer,
    OutcomeDelivered,
    ShutdownBegun,
    TaskHandedOut,
    WorkerExited,
    WorkerStarted,
)


class WorkerHandle(Protocol):
    """A started worker, as the parent sees it (see transport.py)."""

    worker_id: int

    @property
    def pid(self) -> int | None: ...
    def send(self, wire: object) -> None: ...
    def send_shutdown(self) -> None: ...
    def kill(self) -> None: ...
    def join(self) -> None: ...
    def is_alive(self) -> bool: ...


TaskKey = tuple[int, int]  # (job id, index in job)


# The worker-count arithmetic, pure, so that CrossHair can check its contracts
# (tests/contracts/test_crosshair.py). Roster below applies it under `cond`.


# WORK-1: while the pool may grow, start exactly enough workers to be back at
# `processes`, never more. WORK-2: none once the sentinels have been sent
# (SHUT-1) or the pool is terminating. `live <= processes` is the roster's
# invariant, which Roster.add asserts.
def workers_to_start(processes: int, live: int, shutdown_begun: bool, terminating: bool) -> int:
    """How many workers to start now so that `live` is `processes` again.

    pre: processes >= 1 and 0 <= live <= processes
    post: __return__ >= 0
    post: live + __return__ <= processes
    post: not (shutdown_begun or terminating) or __return__ == 0
    post: shutdown_begun or terminating or live + __return__ == processes
    """
    if shutdown_begun or terminating:
        return 0
    return processes - live


# WORK-3, WORK-4: a worker handed `maxtasks` tasks takes no more and exits by itself.
def retiring(handed_out: int, maxtasks: int | None) -> bool:
    """Whether a worker has been handed its `maxtasks` tasks.

    pre: handed_out >= 0 and (maxtasks is None or maxtasks >= 1)
    post: __return__ == (maxtasks is not None and handed_out >= maxtasks)
    post: not __return__ or handed_out >= 1
    """
    return maxtasks is not None and handed_out >= maxtasks


# WORK-3: after taking one more task, a worker holds at most `depth` and has
# been handed at most `maxtasks` in its life. WORK-5: a worker below both
# limits is free, and takes a task.
def can_take(held: int, depth: int, handed_out: int, maxtasks: int | None) -> bool:
    """Whether a worker holding `held` tasks, handed `handed_out` so far, may take one more.

    pre: held >= 0 and depth >= 1 and handed_out >= 0 and (maxtasks is None or maxtasks >= 1)
    post: not __return__ or held + 1 <= depth
    post: not __return__ or maxtasks is None or handed_out + 1 <= maxtasks
    post: __return__ or held >= depth or (maxtasks is not None and handed_out >= maxtasks)
    """
    return held < depth and not retiring(handed_out, maxtasks)


# SHUT-2: exactly one sentinel to each live worker that has not been handed
# its `maxtasks` tasks (such a worker exits by itself); no worker gets two.
def needs_sentinel(handed_out: int, maxtasks: int | None, got_shutdown: bool) -> bool:
    """Whether shutdown must send this worker a sentinel now.

    pre: handed_out >= 0 and (maxtasks is None or maxtasks >= 1)
    post: not (__return__ and got_shutdown)
    post: not (__return__ and maxtasks is not None and handed_out >= maxtasks)
    post: __return__ or got_shutdown or (maxtasks is not None and handed_out >= maxtasks)
    """
    return not (retiring(handed_out, maxtasks) or got_shutdown)


@dataclass
class WorkerRecord:
    handle: WorkerHandle
    held: dict[TaskKey, None] = field(default_factory=dict)  # ordered set
    handed_out: int = 0  # over the worker's life, for maxtasksperchild
    got_shutdown: bool = False
    exited: bool = False  # seen gone; its last outcomes may still be read
    # Held while a task or the sentinel is written to this worker's inbox.
    writing: threading.Lock = field(default_factory=threading.Lock)


class Handout(NamedTuple):
    """A task just recorded as held by a worker, for the caller to write to it."""

    record: WorkerRecord
    wire: object
    # The roster's `cond`, when the task came from `ready`: the task handler, waiting
    # for room there, is woken only once the task is written (see `send`).
    room: threading.Condition | None = None

    def send(self) -> None:
        """Write the task; call once, outside `cond`. Releases `record.writing`."""
        try:
            with contextlib.suppress(OSError):  # it died: the task fails with WorkerLostError
                self.record.handle.send(self.wire)
        finally:
            self.record.writing.release()
        if self.room is not None:
            # Woken before the write, the task handler would take the GIL while
            # this thread writes, and the worker would wait for its next task
            # until the task handler had encoded one more (measured: about a
            # quarter of the time per task of imap over tiny items).
            with self.room:
                self.room.notify_all()  # room in `ready`, or `ready` empty for shutdown


class Roster:
    def __init__(
        self, processes: int, maxtasks: int | None, depth: int, observe: Observer | None = None
    ) -> None:
        # Changes are reported to the observer under `cond`, so that the trace
        # is in the order the roster really changed (observer.py).
        self._observe = observe
        self.processes = processes
        self.maxtasks = maxtasks
        self.depth = depth
        self.cond = threading.Condition(threading.Lock())
        self.workers: dict[int, WorkerRecord] = {}
        self._handles: tuple[WorkerHandle, ...] = ()  # rebuilt when a worker comes or goes
        self.ready: collections.deque[tuple[TaskKey, object]] = collections.deque()
        self.ready_limit = processes  # one prepared task per worker is enough to keep all busy
        # The length of `ready` at which the task handler, waiting for room,
        # wants to be woken; left over once it is not waiting, it costs a
        # wake-up that nobody waits for.
        self._wake_at = 0
        self.shutdown_begun = False  # sentinels sent: no worker starts again
        self.terminating = False
        self._next_id = 0

    # --- worker handler -------------------------------------------------
    def missing(self) -> int:
        """How many workers to start now so the count is `processes` again. Caller holds cond."""
        return workers_to_start(self.processes, len(self.workers), self.shutdown_begun, self.terminating)

    def new_worker_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add(self, handle: WorkerHandle) -> Handout | None:
        """Caller holds cond and has checked `missing()`; returns a ready task for the new worker."""
        assert self.missing() > 0, "a worker started after shutdown or beyond the count"
        self.workers[handle.worker_id] = WorkerRecord(handle)
        self._handles = (*self._handles, handle)
        if self._observe is not None:
            self._observe(WorkerStarted(handle.worker_id, handle.pid))
        return self._hand_out_ready()

    # --- task handler ---------------------------------------------------
    def offer(self, key: TaskKey, wire: object, ahead: int | None = None) -> Handout | None:
        """Hand the task `key` to a free worker, or queue it in `ready`.

        Waits while `ready` holds `ahead` tasks (default `ready_limit`), until
        it has half as many: waking once per task would make the task handler
        take the GIL from the result handler once per task. Returns the
        handout to send, or None when the task was queued or the pool is
        terminating.
        """
        limit = self.ready_limit if ahead is None else ahead
        with self.cond:
            while not self.terminating:
                if not self.ready:
                    record = self._least_busy()
                    if record is not None:
                        return self._assign(record, key, wire)
                if len(self.ready) < limit:
                    self.ready.append((key, wire))
                    return None
                self._wake_at = limit // 2
                self.cond.wait()
            return None

    def _hand_out_ready(self) -> Handout | None:
        """The next ready task, for a worker that has just become free. Caller holds cond."""
        if not self.ready:
            return None
        record = self._least_busy()
        if record is None:
            return None
        key, wire = self.ready.popleft()
        handout = self._assign(record, key, wire)
        if len(self.ready) <= self._wake_at:  # and so when `ready` is empty, for shutdown
            handout = handout._replace(room=self.cond)
        return handout

    def _assign(self, record: WorkerRecord, key: TaskKey, wire: object) -> Handout:
        """Record that the worker holds `key` (WORK-3), before anyone sends it. Caller holds cond."""
        record.held[key] = None
        record.handed_out += 1
        if self._observe is not None:
            self._observe(TaskHandedOut(record.handle.worker_id, *key))
        # Taken under cond, so that a sentinel for this worker is written
        # after this task (SHUT-1), whichever thread writes it. Without it:
        # 1. the result handler hands worker W the last ready task T, leaves cond;
        # 2. the task handler, closing, finds `ready` empty and begins shutdown;
        # 3. the task handler writes W's sentinel;
        # 4. the result handler writes T: W has exited on its sentinel, and T
        #    fails as lost though nothing died (models/pool.pml finds this:
        #    BUG_SENTINEL_OVERTAKES_TASK). With the lock, 3 waits for 4.
        record.writing.acquire()
        return Handout(record, wire)

    def _least_busy(self) -> WorkerRecord | None:
        best: WorkerRecord | None = None
        for record in self.workers.values():
            if self._can_take(record) and (best is None or len(record.held) < len(best.held)):
                best = record
        return best

    def _can_take(self, record: WorkerRecord) -> bool:
        return not record.exited and can_take(len(record.held), self.depth, record.handed_out, self.maxtasks)

    def begin_shutdown(self) -> list[WorkerRecord]:
        """After the last task: the workers that need a sentinel, each once.

        A worker that was handed its `maxtasks` tasks exits by itself and
        gets none; every other worker gets exactly one.
        """
        with self.cond:
            while self.ready and not self.terminating:
                self.cond.wait()  # the last tasks are still to be handed out (SHUT-1)
            if self.terminating:
                # terminate() came first, maybe while the last tasks waited: it
                # stops every worker itself, and no shutdown begins (SHUT-5).
                return []
            self.shutdown_begun = True
            need = [
                record
                for record in self.workers.values()
                if needs_sentinel(record.handed_out, self.maxtasks, record.got_shutdown)
            ]
            for record in need:
                record.got_shutdown = True
            if self._observe is not None:
                recipients = tuple(r.handle.worker_id for r in need)
                self._observe(ShutdownBegun(tuple(self.workers), recipients))
            return need

    # --- result handler -------------------------------------------------
    def settle(self, worker_id: int, key: TaskKey, success: bool) -> Handout | None:
        """The worker's outcome for `key` has been read: it holds the task no more.

        Returns the next ready task, now assigned to the worker that is free.
        """
        with self.cond:
            record = self.workers.get(worker_id)
            if record is None:
                return None
            record.held.pop(key, None)
            if self._observe is not None:
                self._observe(OutcomeDelivered(worker_id, *key, success))
            return self._hand_out_ready()

    def exited(self, worker_id: int) -> None:
        """The worker is seen gone: the outcomes drained from its pipe free it for no new task."""
        with self.cond:
            record = self.workers.get(worker_id)
            if record is not None:
                record.exited = True

    def remove(self, worker_id: int, exitcode: int | None) -> WorkerRecord | None:
        """The worker has exited and all it sent has been read; what it held is lost."""
        with self.cond:
            record = self.workers.pop(worker_id, None)
            self._handles = tuple(h for h in self._handles if h.worker_id != worker_id)
            if record is not None and self._observe is not None:
                self._observe(WorkerExited(worker_id, record.handle.pid, exitcode, tuple(record.held)))
            return record

    def handles(self) -> tuple[WorkerHandle, ...]:
        """The workers in the roster; the same object until one comes or goes."""
        with self.cond:
            return self._handles

    def finished(self) -> bool:
        """Nothing more can happen: shutdown has begun and every worker has gone."""
        with self.cond:
            return self.terminating or (self.shutdown_begun and not self.workers)

    # --- terminate ------------------------------------------------------
    def terminate(self) -> None:
        with self.cond:
            self.terminating = True
            self.cond.notify_all()
