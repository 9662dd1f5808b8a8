"""The records that travel between the pool and its workers.

Parent -> worker: a `Task` (one call, or one chunk of a map) or `SHUTDOWN`.
Worker -> parent: one `Outcome` per task, or one for its initializer's
exception. Inside the parent, `WorkerExited` says that a worker has exited and
that every outcome it sent has been read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, NamedTuple


class Call(NamedTuple):
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwds: dict[str, Any]


# A task's name everywhere in the pool: its job, and its position in that job.
TaskKey = tuple[int, int]  # (job id, position)

CallTuple = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]  # a Call, as a worker opens it


class Task(NamedTuple):
    job_id: int
    position: int  # of this call, or of this chunk, within its job
    # A process worker receives the call still pickled (see wire.py), so that
    # a call it cannot unpickle fails its own job instead of killing it.
    call: Call | bytes | memoryview


class Outcome(NamedTuple):
    job_id: int
    position: int
    success: bool
    # The value or the exception; still pickled when it comes from a process
    # worker, so that one the parent cannot unpickle fails only its job (gh-79492).
    payload: Any
    # A process worker's traceback text travels beside the exception, so it is
    # readable even when the exception itself is not.
    remote_traceback: str | None


class Shutdown(NamedTuple):
    """The shutdown sentinel: a worker that receives it exits."""


SHUTDOWN: Final = Shutdown()


# The job id of the outcome a worker sends when its initializer raises: the
# payload is the initializer's exception (LOST-4).
INITIALIZER_FAILED: Final = -1


class WorkerExited(NamedTuple):
    worker_id: int
    exitcode: int | None
    # Its initializer's exception, as an outcome (INITIALIZER_FAILED), if it
    # raised: the worker then started no task (LOST-4).
    initializer_failure: Outcome | None = None
