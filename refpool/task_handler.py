"""The task handler: hands out submitted tasks, in order, one worker at a time.

For each batch the caller submitted (a job's calls, produced lazily for imap)
it encodes the next call and offers it to the roster: an idle worker is
recorded as holding it, and the task handler sends it; if every worker is
busy, the task waits, encoded, in the roster's short `ready` queue until the
result handler hands it to the first worker that frees (see roster.py). When
the pool is closed and the last task has gone out, it sends one shutdown
sentinel to each worker that needs one (see `Roster.begin_shutdown`).

Stops when: it has sent the sentinels (after close), or the pool terminates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from queue import SimpleQueue
from typing import Final, NamedTuple

from .jobs import JobCache
from .messages import Call, Task
from .observer import Observer, SentinelSent
from .roster import Roster
from .transport import Transport

# How many tasks of apply or map may wait encoded in the roster's `ready`
# queue. Their calls are in memory already, so preparing them early costs no
# laziness (unlike imap's, API-5), and lets this thread work in bursts instead
# of waking for every task (benchmarks/README.md, case 3).
EAGER_READY_LIMIT = 64


class TaskBatch(NamedTuple):
    job_id: int
    calls: Iterable[Call]
    set_length: Callable[[int], None] | None  # imap learns its length at the end

    @property
    def lazy(self) -> bool:
        """imap: the calls come from the caller's input, read as tasks go out."""
        return self.set_length is not None


class QueueMark(NamedTuple):
    name: str


CLOSED: Final = QueueMark("closed")  # no batch follows: send the sentinels
TERMINATED: Final = QueueMark("terminated")


class TaskHandler:
    def __init__(
        self,
        taskqueue: SimpleQueue[TaskBatch | QueueMark],
        roster: Roster,
        transport: Transport,
        cache: JobCache,
        after_shutdown: Callable[[], None],
        observe: Observer | None,
    ) -> None:
        self._observe = observe
        self._taskqueue = taskqueue
        self._roster = roster
        self._transport = transport
        self._cache = cache
        self._after_shutdown = after_shutdown
        self.thread = threading.Thread(target=self._run, name="refpool-task-handler", daemon=True)

    def _run(self) -> None:
        while True:
            batch = self._taskqueue.get()
            if batch is TERMINATED or self._roster.terminating:
                return
            if batch is CLOSED:
                self._send_sentinels()
                return
            assert isinstance(batch, TaskBatch)
            if not self._hand_out(batch):
                return

    def _hand_out(self, batch: TaskBatch) -> bool:
        """Send every task of the batch; False if the pool terminated meanwhile."""
        count = 0
        calls = iter(batch.calls)
        while True:
            try:
                call = next(calls)
            except StopIteration:
                break
            except Exception as exc:
                # The caller's input raised: the job ends here with that error,
                # after the results before it (as CPython's imap).
                self._cache.deliver(batch.job_id, count, False, exc)
                count += 1
                break
            if not self._send(Task(batch.job_id, count, call), None if batch.lazy else EAGER_READY_LIMIT):
                return False
            count += 1
        if batch.set_length is not None:
            batch.set_length(count)
        return True

    def _send(self, task: Task, ahead: int | None) -> bool:
        try:
            wire = self._transport.encode(task)
        except Exception as exc:  # e.g. a lambda sent to a process pool
            self._cache.deliver(task.job_id, task.position, False, exc)
            return True
        handout = self._roster.offer((task.job_id, task.position), wire, ahead)
        if handout is not None:
            handout.send()
        return not self._roster.terminating

    def _send_sentinels(self) -> None:
        for record in self._roster.begin_shutdown():
            if self._observe is not None:  # before sending, so it precedes the worker's exit
                self._observe(SentinelSent(record.handle.worker_id))
            with record.writing:  # after any task being written to it (SHUT-1)
                record.handle.send_shutdown()
        self._after_shutdown()
