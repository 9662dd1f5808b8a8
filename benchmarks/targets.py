"""Adapters: each pool library behind the one narrow interface the cases are written against.

refpool and the stdlib are always measured; the peers (billiard, multiprocess, loky,
pebble, mpire) only when they can be imported. Peers are imported by `installed()` and by
their adapters, never when this module is imported, so that a missing peer costs nothing.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import importlib.metadata
import inspect
import multiprocessing
import platform
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .harness import WORKERS, NotApplicable

THREAD = "thread"  # start(THREAD): a pool of threads instead of processes

# One submitted call's outcome: get(timeout) returns its value, raises its exception, or
# raises the builtin TimeoutError when it has no outcome within `timeout` seconds.
Getter = Callable[[float], Any]


class PoolAdapter(ABC):
    """One library, one pool at a time: start it, use it, stop it."""

    name: str
    # Loky, pebble and mpire start their workers at the first task: an empty pool of
    # theirs starts no process, so case 1 has nothing to measure for them.
    starts_workers_lazily = False

    @abstractmethod
    def start(self, method: str) -> None:
        """Create a pool of WORKERS: `method` is a start method ("fork", "spawn") or THREAD."""

    @abstractmethod
    def stop(self) -> None:
        """Close the pool and wait for its workers to exit."""

    @abstractmethod
    def terminate(self) -> None:
        """Stop the pool at once, its tasks unfinished: for a pool that hangs, whose
        close() and join() would hang too."""

    @abstractmethod
    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], chunksize: int | None) -> list[Any]:
        """All results, in order; chunksize None means the library's own default."""

    @abstractmethod
    def submit_all_and_collect(self, fn: Callable[[], Any], count: int) -> list[Any]:
        """Submit `count` calls of fn() at once, then wait for every result."""

    @abstractmethod
    def submit(self, fn: Callable[..., Any], *args: Any) -> Getter:
        """Submit one call fn(*args); the getter waits for its outcome, within a bound."""

    @abstractmethod
    def imap(
        self,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        """Results in input order, as the library yields them."""


def accepts_buffersize(imap: Callable[..., Any]) -> bool:
    """Whether an imap takes `buffersize=`: a bound on the tasks in flight, so on the results waiting."""
    return "buffersize" in inspect.signature(imap).parameters


def async_result_getter(result: Any) -> Getter:
    """The getter of a multiprocessing-style AsyncResult (refpool, the stdlib, billiard,
    multiprocess, mpire). Each library's get(timeout) raises its own TimeoutError class;
    wait() and ready() are common to all of them."""

    def get(timeout: float) -> Any:
        result.wait(timeout)
        if not result.ready():
            raise TimeoutError(f"no outcome within {timeout:.1f} s")
        return result.get()

    return get


def future_getter(future: concurrent.futures.Future[Any]) -> Getter:
    """The getter of a concurrent.futures Future (loky's, and pebble's ProcessFuture)."""

    def get(timeout: float) -> Any:
        concurrent.futures.wait([future], timeout)
        if not future.done():
            raise TimeoutError(f"no outcome within {timeout:.1f} s")
        return future.result()

    return get


class MultiprocessingApi(PoolAdapter):
    """Pools with the API of multiprocessing.pool.Pool: refpool, the stdlib, billiard, multiprocess."""

    def __init__(self, name: str, process_pool: Callable[[str], Any], thread_pool: Callable[[], Any]) -> None:
        self.name = name
        self._process_pool = process_pool
        self._thread_pool = thread_pool
        self._pool: Any = None

    def start(self, method: str) -> None:
        self._pool = self._thread_pool() if method == THREAD else self._process_pool(method)

    def stop(self) -> None:
        pool, self._pool = self._pool, None
        pool.close()
        pool.join()

    def terminate(self) -> None:
        pool, self._pool = self._pool, None
        pool.terminate()
        pool.join()

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], chunksize: int | None) -> list[Any]:
        return list(self._pool.map(fn, items, chunksize))

    def submit_all_and_collect(self, fn: Callable[[], Any], count: int) -> list[Any]:
        pending = [self._pool.apply_async(fn) for _ in range(count)]
        return [result.get() for result in pending]

    def submit(self, fn: Callable[..., Any], *args: Any) -> Getter:
        return async_result_getter(self._pool.apply_async(fn, args))

    def imap(
        self,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        if buffersize is None:
            return iter(self._pool.imap(fn, items, chunksize))
        if not accepts_buffersize(self._pool.imap):
            raise NotApplicable(f"{self.name} has no buffersize yet")
        return iter(self._pool.imap(fn, items, chunksize, buffersize=buffersize))


class Loky(PoolAdapter):
    """loky's ProcessPoolExecutor, through the concurrent.futures API."""

    name = "loky"
    starts_workers_lazily = True

    def __init__(self) -> None:
        self._executor: Any = None

    def start(self, method: str) -> None:
        if method == THREAD:
            raise NotApplicable("loky has no thread pool")
        loky = importlib.import_module("loky")
        with warnings.catch_warnings():
            # loky warns that fork "does not respect POSIX". The process pools of cases 2-6
            # all fork, loky's too, so that they differ only in the pool, not the start method.
            warnings.simplefilter("ignore", UserWarning)
            context = importlib.import_module("loky.backend").get_context(method)
            self._executor = loky.ProcessPoolExecutor(WORKERS, context=context)

    def stop(self) -> None:
        executor, self._executor = self._executor, None
        executor.shutdown(wait=True)

    def terminate(self) -> None:
        executor, self._executor = self._executor, None
        if "kill_workers" in inspect.signature(executor.shutdown).parameters:
            executor.shutdown(wait=False, kill_workers=True)
        else:  # an older loky
            executor.shutdown(wait=False)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], chunksize: int | None) -> list[Any]:
        # loky's default chunksize is 1, as concurrent.futures': one future per item.
        return list(self._executor.map(fn, items, chunksize=chunksize or 1))

    def submit_all_and_collect(self, fn: Callable[[], Any], count: int) -> list[Any]:
        futures = [self._executor.submit(fn) for _ in range(count)]
        return [future.result() for future in futures]

    def submit(self, fn: Callable[..., Any], *args: Any) -> Getter:
        return future_getter(self._executor.submit(fn, *args))

    def imap(
        self,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        if buffersize is not None:
            raise NotApplicable("loky's map has no buffersize")
        # Executor.map submits the whole input before it yields the first result.
        return iter(self._executor.map(fn, items, chunksize=chunksize))


class Pebble(PoolAdapter):
    """pebble's ProcessPool and ThreadPool, through their futures API."""

    name = "pebble"
    starts_workers_lazily = True

    def __init__(self) -> None:
        self._pool: Any = None

    def start(self, method: str) -> None:
        pebble = importlib.import_module("pebble")
        if method == THREAD:
            self._pool = pebble.ThreadPool(max_workers=WORKERS)
        else:
            self._pool = pebble.ProcessPool(max_workers=WORKERS, context=multiprocessing.get_context(method))

    def stop(self) -> None:
        pool, self._pool = self._pool, None
        pool.close()
        pool.join()

    def terminate(self) -> None:
        pool, self._pool = self._pool, None
        pool.stop()
        pool.join()

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], chunksize: int | None) -> list[Any]:
        # pebble's default chunksize is 1: one future per item.
        return list(self._pool.map(fn, items, chunksize=chunksize or 1).result())

    def submit_all_and_collect(self, fn: Callable[[], Any], count: int) -> list[Any]:
        futures = [self._pool.schedule(fn) for _ in range(count)]
        return [future.result() for future in futures]

    def submit(self, fn: Callable[..., Any], *args: Any) -> Getter:
        return future_getter(self._pool.schedule(fn, args=args))

    def imap(
        self,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        if buffersize is not None:
            raise NotApplicable("pebble's map has no buffersize")
        # Like Executor.map, pebble's map schedules the whole input at once.
        return iter(self._pool.map(fn, items, chunksize=chunksize).result())


class Mpire(PoolAdapter):
    """mpire's WorkerPool, kept alive between calls so that one pool serves a whole sample."""

    name = "mpire"
    starts_workers_lazily = True

    def __init__(self) -> None:
        self._pool: Any = None

    def start(self, method: str) -> None:
        mpire = importlib.import_module("mpire")
        start_method = "threading" if method == THREAD else method
        self._pool = mpire.WorkerPool(n_jobs=WORKERS, start_method=start_method, keep_alive=True)

    def stop(self) -> None:
        pool, self._pool = self._pool, None
        pool.stop_and_join(keep_alive=False)

    def terminate(self) -> None:
        pool, self._pool = self._pool, None
        pool.terminate()

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], chunksize: int | None) -> list[Any]:
        return list(self._pool.map(fn, items, chunk_size=chunksize))

    def submit_all_and_collect(self, fn: Callable[[], Any], count: int) -> list[Any]:
        pending = [self._pool.apply_async(fn) for _ in range(count)]
        return [result.get() for result in pending]

    def submit(self, fn: Callable[..., Any], *args: Any) -> Getter:
        return async_result_getter(self._pool.apply_async(fn, args))

    def imap(
        self,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        chunksize: int = 1,
        buffersize: int | None = None,
    ) -> Iterator[Any]:
        if buffersize is not None:
            raise NotApplicable("mpire's imap has no buffersize")
        return iter(self._pool.imap(fn, items, chunk_size=chunksize))


def _refpool() -> PoolAdapter:
    import refpool

    return MultiprocessingApi(
        "refpool",
        lambda method: refpool.Pool(WORKERS, context=multiprocessing.get_context(method)),
        lambda: refpool.ThreadPool(WORKERS),
    )


def _stdlib() -> PoolAdapter:
    import multiprocessing.pool

    return MultiprocessingApi(
        "stdlib",
        lambda method: multiprocessing.pool.Pool(WORKERS, context=multiprocessing.get_context(method)),
        lambda: multiprocessing.pool.ThreadPool(WORKERS),
    )


def _forks_of_multiprocessing(name: str) -> Callable[[], PoolAdapter]:
    """billiard and multiprocess: forks of multiprocessing with its own contexts."""

    def make() -> PoolAdapter:
        library = importlib.import_module(name)
        pool_module = importlib.import_module(f"{name}.pool")
        return MultiprocessingApi(
            name,
            lambda method: library.get_context(method).Pool(WORKERS),
            lambda: pool_module.ThreadPool(WORKERS),
        )

    return make


@dataclass(frozen=True)
class TargetInfo:
    name: str
    module: str  # importable when the library is installed
    distribution: str  # whose version the report names; "" for the standard library
    adapter: Callable[[], PoolAdapter]

    @property
    def version(self) -> str:
        if not self.distribution:
            return f"Python {platform.python_version()}"
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return "version unknown"


TARGETS: dict[str, TargetInfo] = {
    info.name: info
    for info in (
        TargetInfo("refpool", "refpool", "refpool", _refpool),
        TargetInfo("stdlib", "multiprocessing.pool", "", _stdlib),
        TargetInfo("billiard", "billiard", "billiard", _forks_of_multiprocessing("billiard")),
        TargetInfo("multiprocess", "multiprocess", "multiprocess", _forks_of_multiprocessing("multiprocess")),
        TargetInfo("loky", "loky", "loky", Loky),
        TargetInfo("pebble", "pebble", "pebble", Pebble),
        TargetInfo("mpire", "mpire", "mpire", Mpire),
    )
}


def importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def installed(names: Iterable[str]) -> tuple[list[TargetInfo], list[str]]:
    """The targets among `names` that can be imported, and the names of those that cannot."""
    present: list[TargetInfo] = []
    absent: list[str] = []
    for name in names:
        info = TARGETS[name]
        if importable(info.module):
            present.append(info)
        else:
            absent.append(name)
    return present, absent


def refpool_accepts_buffersize() -> bool:
    import refpool

    return accepts_buffersize(refpool.Pool.imap)
