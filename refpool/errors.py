"""The errors a pool raises, in two families.

Misuse by the caller is a `ValueError` (see `lifecycle.PoolStateError`), as in
the stdlib. Breakage from outside the caller's code has its own types here.
The stdlib's `MaybeEncodingError`, `RemoteTraceback` and `TimeoutError` are
re-exported, not copied, so that `except multiprocessing.TimeoutError` catches
refpool's too.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import multiprocessing.pool
import signal
from multiprocessing import TimeoutError

__all__ = [
    "InitializerError",
    "JobCancelledError",
    "MaybeEncodingError",
    "PoolTerminatedError",
    "RemoteTraceback",
    "ResultDecodingError",
    "TaskTimeoutError",
    "TimeoutError",
    "UnreadInputError",
    "WorkerLostError",
]


# typeshed does not list it, but it is public: CPython's pool raises it.
MaybeEncodingError: type[Exception] = multiprocessing.pool.MaybeEncodingError  # type: ignore[attr-defined]


# The traceback text of an exception raised in a worker process, chained as
# the `__cause__` of the exception that `get()` re-raises (JOB-3): the stdlib's
# class, so that code written for it (`isinstance`, `.tb`) works unchanged.
RemoteTraceback: type[Exception] = multiprocessing.pool.RemoteTraceback  # type: ignore[attr-defined]


def remote_traceback(text: str) -> Exception:
    """The `__cause__` for a worker's formatted traceback, laid out as CPython's pool does."""
    return RemoteTraceback(f'\n"""\n{text}"""')


def describe_exitcode(exitcode: int | None) -> str:
    if exitcode is None:
        return "unknown exit code"
    if exitcode < 0:
        try:
            return f"exit code {exitcode} ({signal.Signals(-exitcode).name})"
        except ValueError:
            pass
    return f"exit code {exitcode}"


class WorkerLostError(Exception):
    """A worker died while it held a task; that task's job fails with this.

    The pool itself goes on: it starts a replacement while it is running.
    """

    def __init__(self, pid: int | None, exitcode: int | None, job_id: int, position: int) -> None:
        super().__init__(
            f"worker (pid {pid}) exited with {describe_exitcode(exitcode)} while it held "
            f"task {position} of job {job_id}"
        )
        self.pid = pid
        self.exitcode = exitcode
        self.job_id = job_id
        self.position = position

    def __reduce__(self) -> tuple[type[WorkerLostError], tuple[int | None, int | None, int, int]]:
        return type(self), (self.pid, self.exitcode, self.job_id, self.position)


class InitializerError(Exception):
    """Workers' initializer kept raising, so this task could not start (LOST-4).

    Its `__cause__` is the last initializer's exception.
    """

    def __init__(self, failures: int) -> None:
        super().__init__(
            f"the pool's initializer raised in {failures} workers in a row, so no worker could "
            "start this task; the initializer's exception is the cause"
        )
        self.failures = failures

    def __reduce__(self) -> tuple[type[InitializerError], tuple[int]]:
        return type(self), (self.failures,)


class PoolTerminatedError(Exception):
    """The pool was terminated before this job finished."""


class ResultDecodingError(Exception):
    """A worker's result or exception reached the parent but could not be unpickled.

    CPython's pool loses its result handler here and hangs (gh-79492); refpool
    fails just the one job. The unpickling error is the `__cause__`.
    """


class JobCancelledError(concurrent.futures.CancelledError):
    """The job was cancelled before it settled (CANCEL-1): its tasks that had not started never
    ran. A `concurrent.futures.CancelledError`, so that code written for futures catches it."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} was cancelled; its tasks that had not started never ran")
        self.job_id = job_id

    def __reduce__(self) -> tuple[type[JobCancelledError], tuple[int]]:
        return type(self), (self.job_id,)


# The builtin TimeoutError, not multiprocessing's: `get(timeout)` raises that
# one when it only stops waiting, and code that waits again after it must not
# wait again, forever, for a task that has failed (TIME-3).
class TaskTimeoutError(builtins.TimeoutError):
    """A task ran past its `timeout`; its worker was stopped and replaced (TIME-2)."""

    def __init__(self, job_id: int, position: int, timeout: float, pid: int | None) -> None:
        super().__init__(
            f"task {position} of job {job_id} ran past its timeout of {timeout:g} s; "
            f"its worker (pid {pid}) was stopped"
        )
        self.job_id = job_id
        self.position = position
        self.timeout = timeout
        self.pid = pid

    def __str__(self) -> str:  # OSError's own would print "[Errno ...]" forms for some args
        return str(self.args[0])

    def __reduce__(self) -> tuple[type[TaskTimeoutError], tuple[int, int, float, int | None]]:
        return type(self), (self.job_id, self.position, self.timeout, self.pid)


class UnreadInputError(Exception):
    """The pool was closed while a buffered imap's input was still being drawn, and the input
    had more items: they were never read or run (BUF-4). Raised by the iterator after the
    results of every item that was drawn."""

    def __init__(self, drawn: int) -> None:
        super().__init__(
            f"the pool was closed after {drawn} items of this imap's input had been drawn, and the "
            "input has more: they were not read, and none of them ran"
        )
        self.drawn = drawn

    def __reduce__(self) -> tuple[type[UnreadInputError], tuple[int]]:
        return type(self), (self.drawn,)
