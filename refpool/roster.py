"""The roster: which workers exist, and which tasks each one holds.

This is how refpool never loses a task to a dead worker (CPython hangs here:
bpo-22393). The parent assigns every task to one worker and records it here
*before* sending it, so ownership is never in doubt: when a worker dies, the
tasks recorded for it are exactly the ones it may have been running, and their
jobs fail with WorkerLostError. Every worker has its own inbox; there is no
shared task queue from which a dying worker could take a task unseen.

Flow control: a worker holds at most `depth` tasks (core.TASKS_IN_FLIGHT), so
a crash fails at most `depth` tasks, and imap reads its input no faster than
workers take it.

All the state is guarded by one condition variable, `cond`, which the task
handler waits on for a free worker.

Invariants (spec WORK-1, WORK-2, WORK-3):
- at most `processes` workers are in the roster;
- every task handed out is held by exactly one worker until its outcome has
  been read or the worker has been removed;
- a worker holds at most `depth` tasks and is handed at most `maxtasks` in all;
- once shutdown has begun or the pool is terminating, no worker is added.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol


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


@dataclass
class WorkerRecord:
    handle: WorkerHandle
    held: dict[TaskKey, None] = field(default_factory=dict)  # ordered set
    handed_out: int = 0  # over the worker's life, for maxtasksperchild
    got_shutdown: bool = False


class Roster:
    def __init__(self, processes: int, maxtasks: int | None, depth: int) -> None:
        self.processes = processes
        self.maxtasks = maxtasks
        self.depth = depth
        self.cond = threading.Condition(threading.Lock())
        self.workers: dict[int, WorkerRecord] = {}
        self.shutdown_begun = False  # sentinels sent: no worker starts again
        self.terminating = False
        self._next_id = 0

    # --- worker handler -------------------------------------------------
    def missing(self) -> int:
        """How many workers to start now so the count is `processes` again. Caller holds cond."""
        if self.shutdown_begun or self.terminating:
            return 0
        return self.processes - len(self.workers)

    def new_worker_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add(self, handle: WorkerHandle) -> None:
        """Caller holds cond and has checked `missing()`."""
        assert self.missing() > 0, "a worker started after shutdown or beyond the count"
        self.workers[handle.worker_id] = WorkerRecord(handle)
        self.cond.notify_all()

    # --- task handler ---------------------------------------------------
    def assign(self, key: TaskKey) -> WorkerRecord | None:
        """Wait for a worker that can take a task and record that it holds `key`.

        Returns None when the pool is terminating.
        """
        with self.cond:
            while not self.terminating:
                record = self._least_busy()
                if record is not None:
                    record.held[key] = None
                    record.handed_out += 1
                    return record
                self.cond.wait()
            return None

    def _least_busy(self) -> WorkerRecord | None:
        open_records = [r for r in self.workers.values() if self._can_take(r)]
        return min(open_records, key=lambda r: len(r.held), default=None)

    def _can_take(self, record: WorkerRecord) -> bool:
        return len(record.held) < self.depth and not self._retiring(record)

    def begin_shutdown(self) -> list[WorkerRecord]:
        """After the last task: the workers that need a sentinel, each once.

        A worker that was handed its `maxtasks` tasks exits by itself and
        gets none; every other worker gets exactly one.
        """
        with self.cond:
            self.shutdown_begun = True
            need = [r for r in self.workers.values() if not (self._retiring(r) or r.got_shutdown)]
            for record in need:
                record.got_shutdown = True
            return need

    def _retiring(self, record: WorkerRecord) -> bool:
        return self.maxtasks is not None and record.handed_out >= self.maxtasks

    # --- result handler -------------------------------------------------
    def settle(self, worker_id: int, key: TaskKey) -> None:
        with self.cond:
            record = self.workers.get(worker_id)
            if record is not None:
                record.held.pop(key, None)
                self.cond.notify_all()

    def remove(self, worker_id: int) -> WorkerRecord | None:
        """The worker has exited; it no longer holds anything."""
        with self.cond:
            record = self.workers.pop(worker_id, None)
            self.cond.notify_all()
            return record

    def handles(self) -> list[WorkerHandle]:
        with self.cond:
            return [r.handle for r in self.workers.values()]

    def finished(self) -> bool:
        """Nothing more can happen: shutdown has begun and every worker has gone."""
        with self.cond:
            return self.terminating or (self.shutdown_begun and not self.workers)

    # --- terminate ------------------------------------------------------
    def terminate(self) -> None:
        with self.cond:
            self.terminating = True
            self.cond.notify_all()
