"""refpool: a reference implementation of a process pool and a thread pool.

The API is that of `multiprocessing.pool.Pool` and `ThreadPool`. The code is
small, and its parts are separate, so it can be read as well as run::

    caller --apply_async/map/imap--> task queue --> TaskHandler: encodes tasks and offers them
                                                      |  to the Roster: the least busy worker with
                                                      |  room is recorded as holding each (up to 8
                                                      v  per worker), else it waits in `ready`
                                   worker inbox (one per worker) --> worker loop: claims each task
                                        ^                                 |   before it starts it
                                        |   ready tasks, to the worker    v   (outcomes; WorkerExited)
                                        +----- that has room again --- ResultHandler: reaps exited
                                                                          |   workers, tells the
                                                                          v   WorkerHandler
    caller <-- job (ApplyResult, MapResult, IMapIterator) <-- JobCache <-- outcomes, and the
                                                                           errors of lost tasks
    WorkerHandler: starts workers, and replaces the ones that exit while the pool may grow.

This is the path of a process worker's outcome. A thread worker takes its
tasks from an inbox in memory itself, and settles its own outcomes in its own
thread, except those of jobs with callbacks, which go to the result handler
so that callbacks run one at a time. A worker that becomes idle while another
holds tasks it has not started gets those tasks: the roster takes them back
(claims.py). spec/tour.md walks through it all step by step; spec/diagrams.md
draws the parts, the records they send and the locks they take.

- lifecycle.py: the states INIT, RUN, CLOSE, TERMINATE and the one table of
  legal transitions.
- worker.py: the loop each worker runs; processes and threads alike.
- roster.py: which worker holds which task. Because the parent assigns every
  task, a worker that dies fails exactly the one task it may have been
  running (WorkerLostError), and the ones queued behind it run elsewhere,
  instead of hanging the pool, as CPython's does (bpo-22393).
- claims.py: how a worker and the parent agree on which tasks have started.
- task_handler.py, result_handler.py, worker_handler.py: the three threads
  that every pool runs; timekeeper.py, a fourth, from the first task with a
  `timeout`: it stops a worker whose task runs past it.
- jobs.py: what the caller waits on, and the cache of unsettled jobs; a job
  can be cancelled (its unstarted tasks never run).
- buffered.py: imap with `buffersize`, whose input the caller's thread draws
  only as results are taken.
- transport.py: pipes and processes, or in-memory inboxes and threads;
  wire.py: the frames on a process worker's pipes.
- core.py wires them together; pool.py is the caller's API.
- observer.py: the records a pool reports to an `observer=`; trace/ runs a
  small pool and draws them (`refpool trace`). architecture.py: the parts as
  data, checked against the code; diagrams.py draws them and the lifecycle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .errors import (
        InitializerError,
        JobCancelledError,
        MaybeEncodingError,
        PoolTerminatedError,
        RemoteTraceback,
        ResultDecodingError,
        TaskTimeoutError,
        TimeoutError,
        UnreadInputError,
        WorkerLostError,
    )
    from .jobs import ApplyResult, AsyncResult, IMapIterator, IMapUnorderedIterator, MapResult
    from .lifecycle import PoolState, PoolStateError
    from .pool import Pool, ThreadPool

# Each public name, and the module that defines it. They are imported on first
# use (PEP 562), because every worker that the spawn or forkserver start method
# makes imports this package to reach worker.py, and needs none of the rest:
# importing all of it cost each new worker about 20 ms (benchmarks, case 1).
_HOME = {
    "ApplyResult": "jobs",
    "AsyncResult": "jobs",
    "IMapIterator": "jobs",
    "IMapUnorderedIterator": "jobs",
    "InitializerError": "errors",
    "JobCancelledError": "errors",
    "MapResult": "jobs",
    "MaybeEncodingError": "errors",
    "Pool": "pool",
    "PoolState": "lifecycle",
    "PoolStateError": "lifecycle",
    "PoolTerminatedError": "errors",
    "RemoteTraceback": "errors",
    "ResultDecodingError": "errors",
    "TaskTimeoutError": "errors",
    "ThreadPool": "pool",
    "TimeoutError": "errors",
    "UnreadInputError": "errors",
    "WorkerLostError": "errors",
}

__all__ = [
    "ApplyResult",
    "AsyncResult",
    "IMapIterator",
    "IMapUnorderedIterator",
    "InitializerError",
    "JobCancelledError",
    "MapResult",
    "MaybeEncodingError",
    "Pool",
    "PoolState",
    "PoolStateError",
    "PoolTerminatedError",
    "RemoteTraceback",
    "ResultDecodingError",
    "TaskTimeoutError",
    "ThreadPool",
    "TimeoutError",
    "UnreadInputError",
    "WorkerLostError",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later lookups do not come here
    return value


def __dir__() -> list[str]:
    return list(__all__)
