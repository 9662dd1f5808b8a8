"""The result handler: reads what workers send and settles jobs.

Each outcome frees its task in the roster; the worker that sent it is handed
the next ready task at once, and then the outcome goes to its job. A payload that
cannot be unpickled fails just its job (CPython hangs: gh-79492). When a
worker has exited, the oldest task it still held fails with WorkerLostError, the
tasks behind it are handed to other workers (roster.py), and the worker
handler is told, so that it can start a replacement.

Thread workers settle their own outcomes, in their own threads, through
`settle_in_worker`: a task then costs no hand-off between threads. Only the
outcomes of jobs with a callback come here, so that callbacks run one at a
time, in this thread, as in CPython's ThreadPool.

It also runs what must run where callbacks run: the settling of a cancelled
job that has an error_callback (`in_callback_thread`, CANCEL-2).

Stops when: the pool is closing and every worker has exited with nothing left
to run (it then stops the worker handler), or the pool terminates.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from .errors import InitializerError, ResultDecodingError, TaskTimeoutError, WorkerLostError, remote_traceback
from .jobs import JobCache
from .messages import Outcome, TaskKey, WorkerExited
from .roster import Handout, Roster, WorkerRecord, send_all
from .transport import Event, Transport


class ResultHandler:
    def __init__(
        self,
        roster: Roster,
        transport: Transport,
        cache: JobCache,
        worker_reaped: Callable[[], None],
        finished: Callable[[], None],
    ) -> None:
        self._roster = roster
        self._transport = transport
        self._cache = cache
        self._worker_reaped = worker_reaped
        self._finished = finished
        self._soon: collections.deque[Callable[[], None]] = collections.deque()
        self._soon_lock = threading.Lock()
        self._stopped = False
        self.thread = threading.Thread(target=self._run, name="refpool-result-handler", daemon=True)

    def in_callback_thread(self, settle: Callable[[], None]) -> None:
        """Run `settle` in this handler's thread, soon; here and now if it has stopped."""
        with self._soon_lock:
            if not self._stopped:
                self._soon.append(settle)
                self._transport.wake()
                return
        settle()

    def _run_soon(self) -> None:
        while True:
            with self._soon_lock:
                if not self._soon:
                    return
                settle = self._soon.popleft()
            settle()

    def _run(self) -> None:
        try:
            while not self._roster.finished():
                # Handled in a call of its own, so that nothing of the last outcomes
                # stays referenced while this thread waits for more (SHUT-8).
                if not self._handle(self._transport.wait(self._roster.handles())):
                    return  # terminate() fails what is left
        finally:
            with self._soon_lock:
                self._stopped = True
            self._run_soon()
        self._finished()  # no worker is needed any more

    def _handle(self, events: list[Event]) -> bool:
        """Settle what the workers sent; False if the pool is terminating."""
        if self._soon:
            self._run_soon()
        for exited in (event for event in events if isinstance(event, WorkerExited)):
            self._roster.exited(exited.worker_id)  # before its last outcomes are settled
        # Outcomes come in bursts: settle them all in the roster, write the
        # tasks that this frees room for (one write per worker), and only
        # then deliver the outcomes, while the workers run those tasks.
        handouts: list[Handout] = []
        outcomes: list[Outcome] = []
        for event in events:
            if self._roster.terminating:
                return False
            if isinstance(event, WorkerExited):
                self._deliver(handouts, outcomes)  # what the worker sent comes first
                self._on_worker_exited(event)
            elif isinstance(event, Outcome):
                outcomes.append(event)  # a thread worker's, settled in the roster already
            else:
                worker_id, outcome = event
                key = (outcome.job_id, outcome.position)
                handouts.append(self._roster.settle(worker_id, key, outcome.success))
                outcomes.append(outcome)
        self._deliver(handouts, outcomes)
        return True

    def _deliver(self, handouts: list[Handout], outcomes: list[Outcome]) -> None:
        send_all(handouts)
        for outcome in outcomes:
            if self._roster.terminating:
                return
            success, value = self._open(outcome)
            self._cache.deliver(outcome.job_id, outcome.position, success, value)
        handouts.clear()
        outcomes.clear()

    def deliver_in_worker(self, job_id: int, position: int, success: bool, value: Any) -> None:
        """A thread worker's outcome, delivered in its own thread; a job with callbacks is
        delivered by this handler's thread instead, so that callbacks run one at a time."""
        if not self._cache.deliver_here(job_id, position, success, value):
            self._transport.defer(Outcome(job_id, position, success, value, None))

    def report_in_worker(self, worker_id: int, finished: list[tuple[TaskKey, bool]], more: bool) -> None:
        """A thread worker's finished tasks, freed in the roster in one step (worker.ThreadPort)."""
        self._roster.settle_many(worker_id, finished, more).send()

    def _open(self, outcome: Outcome) -> tuple[bool, Any]:
        try:
            value = self._transport.decode(outcome.payload)
        except Exception as exc:
            return False, self._undecodable(outcome, exc)
        if outcome.success:
            return True, value
        if not isinstance(value, BaseException):
            return False, self._undecodable(outcome, TypeError(f"{value!r} is not an exception"))
        if outcome.remote_traceback is not None:
            value.__cause__ = remote_traceback(outcome.remote_traceback)
        return False, value

    def _undecodable(self, outcome: Outcome, cause: Exception) -> ResultDecodingError:
        what = "result" if outcome.success else "exception"
        error = ResultDecodingError(
            f"the {what} of task {outcome.position} of job {outcome.job_id} could not be unpickled: {cause!r}"
        )
        error.__cause__ = cause
        if outcome.remote_traceback is not None:
            error.add_note(f"The worker's traceback:\n{outcome.remote_traceback}")
        return error

    def _on_worker_exited(self, exited: WorkerExited) -> None:
        if exited.initializer_failure is not None:
            self._on_initializer_failure(exited, exited.initializer_failure)
            return
        record, lost, handout = self._roster.reap(exited.worker_id, exited.exitcode)
        if record is None:
            return
        handout.send()  # the tasks it had not started, to other workers
        self._release(record)
        if lost is not None:
            self._cache.deliver(*lost, False, self._lost_error(record, lost, exited.exitcode))
        self._worker_reaped()

    @staticmethod
    def _lost_error(record: WorkerRecord, lost: TaskKey, exitcode: int | None) -> Exception:
        if record.timed_out is not None and record.timed_out[0] == lost:
            return TaskTimeoutError(*lost, record.timed_out[1], record.handle.pid)  # TIME-2
        return WorkerLostError(record.handle.pid, exitcode, *lost)

    def _on_initializer_failure(self, exited: WorkerExited, failure: Outcome) -> None:
        """The worker started none of its tasks: they go to others, or fail if workers keep
        failing to start (LOST-4)."""
        record, failed, handout = self._roster.reap_uninitialized(exited.worker_id, exited.exitcode)
        if record is None:
            return
        handout.send()
        self._release(record)
        if failed:
            _, cause = self._open(failure)
            failures = self._roster.initializer_failures
            for key in failed:
                error = InitializerError(failures)
                error.__cause__ = cause
                self._cache.deliver(*key, False, error)
        self._worker_reaped()  # its replacement starts after a pause (worker_handler.py)

    def _release(self, record: WorkerRecord) -> None:
        record.handle.join()
        with record.writing:  # no thread may be writing to the inbox being closed
            self._transport.release(record.handle)
