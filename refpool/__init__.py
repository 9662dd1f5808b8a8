"""refpool: a reference implementation of a process pool and a thread pool.

The API is that of `multiprocessing.pool.Pool` and `ThreadPool`. The code is
small, and its parts are separate, so it can be read as well as run::

    caller --apply_async/map/imap--> task queue --> TaskHandler: encodes each task and offers
                                                      |  it to the Roster; an idle worker is
                                                      |  recorded as holding it first, else the
                                                      v  task waits in the Roster's `ready` queue
                                   worker inbox (one per worker) --> worker loop
                                        ^                                 |
                                        |   the next ready task, to the   v
                                        +----- worker just freed ---- ResultHandler
                                                                          |
    caller <-- job (ApplyResult, MapResult, IMapIterator) <-- JobCache <--+ (outcomes, workers gone)
    WorkerHandler: starts workers, and replaces the ones that exit while the pool may grow.

- lifecycle.py: the states INIT, RUN, CLOSE, TERMINATE and the one table of
  legal transitions.
- worker.py: the loop each worker runs; processes and threads alike.
- roster.py: which worker holds which task. Because the parent assigns every
  task, a worker that dies fails exactly its own tasks (WorkerLostError)
  instead of hanging the pool, as CPython's does (bpo-22393).
- task_handler.py, result_handler.py, worker_handler.py: the three threads.
- jobs.py: what the caller waits on, and the cache of unsettled jobs.
- transport.py: pipes and processes, or queues and threads; wire.py: the
  bytes on a process worker's pipes.
- core.py wires them together; pool.py is the caller's API.
"""

from .errors import (
    MaybeEncodingError,
    PoolTerminatedError,
    RemoteTraceback,
    ResultDecodingError,
    TimeoutError,
    WorkerLostError,
)
from .jobs import ApplyResult, AsyncResult, IMapIterator, IMapUnorderedIterator, MapResult
from .lifecycle import PoolState, PoolStateError
from .pool import Pool, ThreadPool

__all__ = [
    "ApplyResult",
    "AsyncResult",
    "IMapIterator",
    "IMapUnorderedIterator",
    "MapResult",
    "MaybeEncodingError",
    "Pool",
    "PoolState",
    "PoolStateError",
    "PoolTerminatedError",
    "RemoteTraceback",
    "ResultDecodingError",
    "ThreadPool",
    "TimeoutError",
    "WorkerLostError",
]
