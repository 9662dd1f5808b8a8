"""The task handler: hands out submitted tasks, in order, one worker at a time.

For each batch the caller submitted (a job's calls, produced lazily for imap)
it encodes the next call and offers it to the roster: the least busy worker
with room is recorded as holding it, and the task handler writes it; if no
worker has room, the task waits, encoded, in the roster's short `ready`
queue until the result handler hands it to the first worker that frees (see
roster.py). When the pool is closed and every task has been offered, it
tells the roster, which sends each idle worker its shutdown sentinel (the
others get theirs when they become idle: `Roster.begin_closing`).

Stops when: it has offered the last task (after close), or the pool terminates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from queue import Empty, SimpleQueue
from typing import Final, NamedTuple

from .jobs import JobCache
from .messages import Call, Task
from .roster import ReadyTask, Roster
from .transport import Transport

# How many tasks read from an input in memory are offered to the roster at once
# (see TaskHandler._run).
OFFER_AT_ONCE = 16


class TaskBatch(NamedTuple):
    job_id: int
    calls: Iterable[Call]
    set_length: Callable[[int], None] | None  # imap learns its length at the end
    in_memory: bool  # reading the calls never waits: apply, map, imap over a sized input
    first_position: int = 0  # a buffered imap submits its tasks a few at a time (buffered.py)
    timeout: float | None = None  # how long each task may run (TIME-1)


class QueueMark(NamedTuple):
    name: str


CLOSED: Final = QueueMark("closed")  # no batch follows: the workers may have their sentinels
TERMINATED: Final = QueueMark("terminated")


class TaskHandler:
    def __init__(
        self,
        taskqueue: SimpleQueue[TaskBatch | QueueMark],
        roster: Roster,
        transport: Transport,
        cache: JobCache,
    ) -> None:
        self._taskqueue = taskqueue
        self._roster = roster
        self._transport = transport
        self._cache = cache
        self.thread = threading.Thread(target=self._run, name="refpool-task-handler", daemon=True)

    def _run(self) -> None:
        # Tasks are offered to the roster several at a time when reading them
        # cannot wait (calls in memory, from one batch or from several queued
        # one after the other, as 5,000 apply_async calls are): one round of the
        # roster's lock per task would make this thread and the workers take
        # turns at it, task by task. A task read from an input that may wait (a
        # generator) goes out at once, and what was prepared before it first.
        prepared: list[ReadyTask] = []
        while True:
            if not prepared and self._roster.cancelled:
                self._roster.forget_cancelled(self._taskqueue.empty)
            try:
                batch = self._taskqueue.get_nowait() if prepared else self._taskqueue.get()
            except Empty:
                if not self._offer(prepared):
                    return
                continue
            if batch is TERMINATED or self._roster.terminating:
                return
            if batch is CLOSED:
                if not self._offer(prepared):
                    return
                self._roster.begin_closing().send()
                self._transport.wake()  # the result handler may have no worker left to wait for
                return
            assert isinstance(batch, TaskBatch)
            handed_out = self._hand_out(batch, prepared)
            # The batch holds the caller's input: not kept while this thread
            # waits for the next one (SHUT-8).
            del batch
            if not handed_out:
                return

    def _hand_out(self, batch: TaskBatch, prepared: list[ReadyTask]) -> bool:
        """Prepare every task of the batch, offering them as they pile up (see `_run`); False if
        the pool terminated meanwhile."""
        at_once = OFFER_AT_ONCE if batch.in_memory else 1
        if not batch.in_memory and not self._offer(prepared):
            return False
        count = batch.first_position
        cancelled = self._roster.cancelled
        calls = iter(batch.calls)
        while True:
            if cancelled and batch.job_id in cancelled:
                return True  # CANCEL-1: none of its tasks runs, and its input is read no further
            try:
                call = next(calls)
            except StopIteration:
                break
            except Exception as exc:
                # The caller's input raised: the job ends here with that error,
                # after the results before it (as CPython's imap).
                if not self._offer(prepared):
                    return False
                self._cache.deliver(batch.job_id, count, False, exc)
                count += 1
                break
            task = self._prepare(Task(batch.job_id, count, call), batch.timeout)
            count += 1
            if task is not None:
                prepared.append(task)
            if len(prepared) >= at_once and not self._offer(prepared):
                return False
        if batch.set_length is not None:
            # imap's length is known now: its last tasks go out before anything else is read.
            if not self._offer(prepared):
                return False
            batch.set_length(count)
        return True

    def _prepare(self, task: Task, timeout: float | None) -> ReadyTask | None:
        try:
            encoded = self._transport.encode(task)
        except Exception as exc:  # e.g. a lambda sent to a process pool
            self._cache.deliver(task.job_id, task.position, False, exc)
            return None
        return ReadyTask((task.job_id, task.position), encoded, self._transport.size(encoded), timeout)

    def _offer(self, prepared: list[ReadyTask]) -> bool:
        """Offer the prepared tasks, waiting for room as needed; False if the pool terminated."""
        while prepared:
            handout, taken = self._roster.offer(prepared)
            handout.send()
            del prepared[:taken]
            if prepared and not self._roster.wait_for_room():
                return False
        return not self._roster.terminating
