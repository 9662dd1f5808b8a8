"""The result handler: reads what workers send and settles jobs.

Each outcome frees its task in the roster; the worker that sent it is handed
the next ready task at once, and then the outcome goes to its job. A payload that
cannot be unpickled fails just its job (CPython hangs: gh-79492). When a
worker is gone, every task it still held fails with WorkerLostError, and the
worker handler is told, so that it can start a replacement.

Stops when: shutdown has begun and every worker has gone, or the pool terminates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .errors import RemoteTraceback, ResultDecodingError, WorkerLostError
from .jobs import JobCache
from .messages import Outcome, WorkerGone
from .roster import Roster
from .transport import Transport


class ResultHandler:
    def __init__(
        self,
        roster: Roster,
        transport: Transport,
        cache: JobCache,
        worker_gone: Callable[[], None],
    ) -> None:
        self._roster = roster
        self._transport = transport
        self._cache = cache
        self._worker_gone = worker_gone
        self.thread = threading.Thread(target=self._run, name="refpool-result-handler", daemon=True)

    def _run(self) -> None:
        while not self._roster.finished():
            events = self._transport.wait(self._roster.handles())
            for gone in (event for event in events if isinstance(event, WorkerGone)):
                self._roster.exited(gone.worker_id)  # before its last outcomes are settled
            for event in events:
                if self._roster.terminating:
                    return  # terminate() fails what is left
                if isinstance(event, WorkerGone):
                    self._on_worker_gone(event)
                else:
                    self._on_outcome(*event)

    def _on_outcome(self, worker_id: int, outcome: Outcome) -> None:
        handout = self._roster.settle(worker_id, (outcome.job_id, outcome.position), outcome.success)
        if handout is not None:
            handout.send()  # first, so the worker runs it while this thread settles the job
        success, value = self._open(outcome)
        self._cache.deliver(outcome.job_id, outcome.position, success, value)

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
            value.__cause__ = RemoteTraceback(outcome.remote_traceback)
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

    def _on_worker_gone(self, gone: WorkerGone) -> None:
        record = self._roster.remove(gone.worker_id, gone.exitcode)
        if record is None:
            return
        record.handle.join()
        for job_id, index in record.held:
            lost = WorkerLostError(record.handle.pid, gone.exitcode, job_id, index)
            self._cache.deliver(job_id, index, False, lost)
        self._worker_gone()
