"""Pool and ThreadPool: the caller's side, with the API of multiprocessing.pool.

The methods here check their arguments, make a job, and put its calls on the
task queue; everything else happens in the core (core.py). Checking the state
and enqueueing happen under the lifecycle's lock, so a submit that races with
close() is either refused or handed out, never left in the queue unseen.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sized
from multiprocessing.context import BaseContext
from types import TracebackType
from typing import Any, Self, TypeVar

from .buffered import IMapResults, InputFeed
from .chunking import check_chunksize, chunked, default_chunksize
from .core import PoolCore
from .jobs import ApplyResult, IMapIterator, IMapUnorderedIterator, Job, MapResult
from .lifecycle import PoolEvent, PoolState
from .messages import Call
from .observer import Observer
from .task_handler import TaskBatch
from .transport import ProcessTransport, ThreadTransport, Transport, WorkerConfig
from .worker import mapstar, starmapstar

T = TypeVar("T")
R = TypeVar("R")
Callback = Callable[[Any], object]


def usable_cpus() -> int:
    """The CPUs this process may run on (not all the machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_processes(processes: object) -> int:
    if processes is None:
        return usable_cpus()
    if isinstance(processes, bool) or not isinstance(processes, int):
        raise TypeError(f"processes must be an int or None, not {processes!r}")
    if processes < 1:
        error = ValueError("Number of processes must be at least 1")
        error.add_note(f"refpool: got processes={processes!r}")
        raise error
    return processes


def check_maxtasks(maxtasks: object) -> int | None:
    if maxtasks is not None and (
        isinstance(maxtasks, bool) or not isinstance(maxtasks, int) or maxtasks <= 0
    ):
        error = ValueError("maxtasksperchild must be a positive int or None")
        error.add_note(f"refpool: got maxtasksperchild={maxtasks!r}")
        raise error
    return maxtasks


def check_callable(name: str, value: object) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable or None, not {value!r}")


# API-13: what a submit is given is checked in the caller, at once, with the
# argument's name and value; CPython sends it on, and the job fails in the
# worker with an error that names neither.
def check_func(func: object) -> None:
    if not callable(func):
        raise TypeError(f"func must be a callable, not {func!r}")


def as_tuple(name: str, values: object) -> tuple[Any, ...]:
    """`values` as a tuple; a TypeError naming the argument if it is not iterable."""
    if type(values) is tuple:  # the common case, on every apply_async: no copy
        return values
    try:
        items = iter(values)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"{name} must be an iterable, not {values!r}") from None
    return tuple(items)


def as_kwds(kwds: object) -> dict[str, Any]:
    """`kwds` as a dict; a TypeError naming it unless it is a mapping with str keys.

    Only a mapping: `dict()` would also take a list of pairs, which `f(**kwds)` refuses.
    """
    if not isinstance(kwds, Mapping):
        raise TypeError(f"kwds must be a mapping, not {kwds!r}")
    for key in kwds:
        if not isinstance(key, str):
            raise TypeError(f"kwds keys must be strings, not {key!r}")
    return dict(kwds)


def iterate(iterable: object) -> Iterator[Any]:
    """iter(iterable); a TypeError naming the argument if it is not iterable (API-13).

    Only the call of iter() is guarded: an error the input raises while it is
    read is the input's own, and reaches the caller unchanged (API-6).
    """
    try:
        return iter(iterable)  # type: ignore[call-overload, no-any-return]
    except TypeError:
        raise TypeError(f"iterable must be an iterable, not {iterable!r}") from None


def check_task_timeout(timeout: object) -> float | None:
    """A task's `timeout` (TIME-1): None or a number of seconds > 0; infinity is None."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
    if math.isnan(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a number of seconds > 0 or None, not {timeout!r}")
    return None if timeout == math.inf else float(timeout)


def check_buffersize(buffersize: object) -> int | None:
    """imap's `buffersize` (BUF-2), with the messages of CPython's Executor.map."""
    if buffersize is None:
        return None
    if not isinstance(buffersize, int):  # a bool passes, as in CPython
        error: Exception = TypeError("buffersize must be an integer or None")
    elif buffersize < 1:
        error = ValueError("buffersize must be None or > 0")
    else:
        return buffersize
    error.add_note(f"refpool: got buffersize={buffersize!r}")
    raise error


def check_context(context: object) -> None:
    if context is not None and not isinstance(context, BaseContext):
        raise TypeError(
            f"context must be a multiprocessing context or None, not {context!r} "
            "(use multiprocessing.get_context(method))"
        )


def _finalize_dropped_pool(core: PoolCore, description: str) -> None:
    """Runs when the caller's Pool object is collected, or at exit."""
    # Warned here, not in __del__: for a pool in a reference cycle the
    # collector runs this callback first, and it changes the state.
    if core.state is PoolState.RUN:
        warnings.warn(f"unclosed running multiprocessing pool {description}", ResourceWarning, stacklevel=2)
    # The collector runs in whichever thread allocates, even one of this
    # pool's own threads while it holds the roster's lock; terminating there
    # would wait on itself. The main thread cannot hold this pool's locks once
    # the pool is unreachable, so only it terminates in place.
    if threading.current_thread() is threading.main_thread():
        core.terminate()
    else:
        threading.Thread(target=core.terminate, name="refpool-finalizer", daemon=True).start()


class Pool:
    """A pool of worker processes, with the API of `multiprocessing.pool.Pool`."""

    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: int | None = None,
        context: BaseContext | None = None,
        *,
        observer: Observer | None = None,
    ) -> None:
        """As CPython's Pool; `observer` receives the pool's lifecycle (see observer.py)."""
        self._core: PoolCore | None = None
        processes = check_processes(processes)
        maxtasks = check_maxtasks(maxtasksperchild)
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        config: WorkerConfig = (initializer, as_tuple("initargs", initargs), maxtasks)
        check_context(context)
        check_callable("observer", observer)
        self._processes = processes
        core = PoolCore(processes, maxtasks, self._make_transport(context, config), observer)
        core.start()
        self._core = core
        # Terminates the pool when it is garbage-collected or at exit, as
        # CPython's Finalize does; holds the core only, never this object.
        self._finalizer = weakref.finalize(self, _finalize_dropped_pool, core, repr(self))

    def _make_transport(self, context: BaseContext | None, config: WorkerConfig) -> Transport:
        return ProcessTransport(context or multiprocessing.get_context(), config)

    @property
    def _state(self) -> PoolState:
        return self._live_core().state

    def _live_core(self) -> PoolCore:
        assert self._core is not None, "the constructor did not finish"
        return self._core

    def __repr__(self) -> str:
        cls = type(self)
        state = self._core.state if self._core is not None else PoolState.INIT
        return f"<{cls.__module__}.{cls.__qualname__} state={state} pool_size={self._processes}>"

    def __reduce__(self) -> Any:
        raise NotImplementedError("pool objects cannot be passed between processes or pickled")

    def __enter__(self) -> Self:
        self._live_core().check_running()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.terminate()

    # --- lifecycle ------------------------------------------------------
    def close(self) -> None:
        """No new work; the workers exit when the submitted work is done."""
        self._live_core().close()

    def terminate(self) -> None:
        """Stop the workers now; jobs not finished fail with PoolTerminatedError."""
        self._live_core().terminate()

    def join(self) -> None:
        """Wait until every worker and handler has exited (after close or terminate)."""
        self._live_core().join()

    # --- submitting work ------------------------------------------------
    def _submit(
        self,
        make_job: Callable[[], Job],
        calls: Iterable[Call] | None,
        in_memory: bool = True,
        timeout: float | None = None,
    ) -> Any:
        """Make the job and queue its calls; with `calls` None (a buffered imap), its tasks
        come later, through `_submit_task`."""
        core = self._live_core()
        with core.lifecycle.lock:
            core.lifecycle.fire(PoolEvent.SUBMIT)
            job = make_job()
            if calls is not None:
                # Only imap's length is unknown until its input is exhausted.
                set_length = job._set_length if isinstance(job, IMapIterator) else None
                core.enqueue(TaskBatch(job.job_id, calls, set_length, in_memory, 0, timeout))
        return job

    def _submit_task(
        self, job: IMapIterator[Any], timeout: float | None, position: int, call: Call
    ) -> PoolState | None:
        """One more task of a buffered imap, if the pool is still running; the pool's state, or
        None if the job has settled (cancelled: see PoolCore._withdraw) and nothing was queued."""
        core = self._live_core()
        with core.lifecycle.lock:
            if job.settled:
                return None
            state = core.state
            if state is PoolState.RUN:
                core.enqueue(TaskBatch(job.job_id, (call,), None, True, position, timeout))
            return state

    def _check_task_timeout(self, timeout: object) -> float | None:
        return check_task_timeout(timeout)

    def apply(self, func: Callable[..., R], args: Iterable[Any] = (), kwds: Mapping[str, Any] = {}) -> R:
        result: R = self.apply_async(func, args, kwds).get()
        return result

    def apply_async(
        self,
        func: Callable[..., Any],
        args: Iterable[Any] = (),
        kwds: Mapping[str, Any] = {},
        callback: Callback | None = None,
        error_callback: Callback | None = None,
        *,
        timeout: float | None = None,
    ) -> ApplyResult:
        """As CPython's; `timeout`: seconds the task may run once started (TIME-1)."""
        check_func(func)
        check_callable("callback", callback)
        check_callable("error_callback", error_callback)
        limit = self._check_task_timeout(timeout)
        core = self._live_core()
        call = Call(func, as_tuple("args", args), as_kwds(kwds))
        result: ApplyResult = self._submit(
            lambda: ApplyResult(core.cache, self, callback, error_callback), [call], True, limit
        )
        return result

    def map(self, func: Callable[[Any], R], iterable: Iterable[Any], chunksize: int | None = None) -> list[R]:
        result: list[R] = self._map_async(func, iterable, mapstar, chunksize).get()
        return result

    def starmap(
        self, func: Callable[..., R], iterable: Iterable[Iterable[Any]], chunksize: int | None = None
    ) -> list[R]:
        result: list[R] = self._map_async(func, iterable, starmapstar, chunksize).get()
        return result

    def map_async(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        callback: Callback | None = None,
        error_callback: Callback | None = None,
        *,
        timeout: float | None = None,
    ) -> MapResult:
        """As CPython's; `timeout`: seconds each chunk may run once started (TIME-1)."""
        return self._map_async(func, iterable, mapstar, chunksize, callback, error_callback, timeout)

    def starmap_async(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        callback: Callback | None = None,
        error_callback: Callback | None = None,
        *,
        timeout: float | None = None,
    ) -> MapResult:
        """As CPython's; `timeout`: seconds each chunk may run once started (TIME-1)."""
        return self._map_async(func, iterable, starmapstar, chunksize, callback, error_callback, timeout)

    def _map_async(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Any],
        mapper: Callable[[Any], list[Any]],
        chunksize: int | None,
        callback: Callback | None = None,
        error_callback: Callback | None = None,
        timeout: object = None,
    ) -> MapResult:
        core = self._live_core()
        core.check_running()  # before reading the input, as CPython
        check_func(func)
        check_callable("callback", callback)
        check_callable("error_callback", error_callback)
        limit = self._check_task_timeout(timeout)
        # As CPython: a sized input is used as it is, anything else read into a list.
        items = iterable if isinstance(iterable, Sized) else list(iterate(iterable))
        if chunksize is None:
            chunksize = default_chunksize(len(items), self._processes)
        check_chunksize(chunksize)
        size = chunksize
        calls = (Call(mapper, ((func, chunk),), {}) for chunk in chunked(items, size))
        result: MapResult = self._submit(
            lambda: MapResult(core.cache, self, size, len(items), callback, error_callback),
            calls,
            True,
            limit,
        )
        return result

    def imap(
        self,
        func: Callable[[Any], R],
        iterable: Iterable[Any],
        chunksize: int = 1,
        buffersize: int | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[R]:
        """Results in input order, as they come; reads the input only as workers need it, or,
        with `buffersize`, only as the caller takes results (BUF-1). `timeout`: seconds each
        task may run once started (TIME-1)."""
        return self._imap(IMapIterator, func, iterable, chunksize, buffersize, timeout)

    def imap_unordered(
        self,
        func: Callable[[Any], R],
        iterable: Iterable[Any],
        chunksize: int = 1,
        buffersize: int | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[R]:
        """Results in the order they finish; otherwise as imap."""
        return self._imap(IMapUnorderedIterator, func, iterable, chunksize, buffersize, timeout)

    def _imap(
        self,
        kind: type[IMapIterator[Any]],
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int,
        buffersize: object,
        timeout: object,
    ) -> Iterator[Any]:
        core = self._live_core()
        core.check_running()
        check_func(func)
        check_chunksize(chunksize)
        bound = check_buffersize(buffersize)
        limit = self._check_task_timeout(timeout)
        items = iterate(iterable)
        if bound is not None:
            return self._buffered_imap(kind, func, items, chunksize, bound, limit)
        calls: Iterator[Call]
        if chunksize == 1:
            calls = (Call(func, (item,), {}) for item in items)
        else:
            calls = (Call(mapstar, ((func, chunk),), {}) for chunk in chunked(items, chunksize))
        # An input of known size is a collection in memory: reading it never waits.
        in_memory = isinstance(iterable, Sized)
        result: IMapIterator[Any] = self._submit(lambda: kind(core.cache, self), calls, in_memory, limit)
        if chunksize == 1:
            return result
        return IMapResults(result, None, chunked=True)

    def _buffered_imap(
        self,
        kind: type[IMapIterator[Any]],
        func: Callable[[Any], Any],
        items: Iterator[Any],
        chunksize: int,
        buffersize: int,
        timeout: float | None,
    ) -> Iterator[Any]:
        """imap with `buffersize`: the input is drawn in the caller's thread (buffered.py)."""
        core = self._live_core()
        job: IMapIterator[Any] = self._submit(lambda: kind(core.cache, self), None)

        def make_call(chunk: tuple[Any, ...]) -> Call:
            return Call(func, chunk, {}) if chunksize == 1 else Call(mapstar, ((func, chunk),), {})

        def submit(position: int, call: Call) -> PoolState | None:
            return self._submit_task(job, timeout, position, call)

        feed = InputFeed(job, items, chunksize, make_call, buffersize, submit)
        feed.fill()
        return IMapResults(job, feed, chunked=chunksize > 1)


class ThreadPool(Pool):
    """A pool of worker threads, with the API of `multiprocessing.pool.ThreadPool`."""

    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        *,
        observer: Observer | None = None,
    ) -> None:
        super().__init__(processes, initializer, initargs, observer=observer)

    def _make_transport(self, context: BaseContext | None, config: WorkerConfig) -> Transport:
        return ThreadTransport(config)

    def _check_task_timeout(self, timeout: object) -> float | None:
        limit = check_task_timeout(timeout)
        if limit is not None:
            raise ValueError(
                f"ThreadPool cannot enforce timeout={timeout!r}: a thread cannot be stopped "
                "when its task runs past its time; use Pool, whose workers are processes (TIME-4)"
            )
        return None
