"""Jobs and the job cache: what the caller holds while the pool works.

A job is made of tasks (one for apply, one per chunk for map, one per item or
chunk for imap). Outcomes arrive through `JobCache.deliver`, from whichever
component learns them: the result handler (a worker's outcome, a lost worker),
the task handler (a call that could not be pickled, an input iterator that
raised) or terminate(). The first outcome that settles a job wins; later ones
for it are ignored.

Invariants (spec JOB-1): a job is in the cache exactly while it is not settled;
each job settles exactly once, with its value or an exception.
"""

from __future__ import annotations

import collections
import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .errors import TimeoutError

T = TypeVar("T")
Callback = Callable[[Any], object]

_job_ids = itertools.count()


class JobCache:
    """The jobs that are not settled yet, by job id."""

    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.job_id] = job

    def discard(self, job_id: int) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def deliver(self, job_id: int, index: int, success: bool, value: Any) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:  # else it has settled already, e.g. a failed map
            job._set(index, success, value)

    def abandon_all(self, make_error: Callable[[], BaseException]) -> None:
        """Fail every job that is not settled (terminate)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job._abandon(make_error())

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)


class Job:
    """What every job has: an id, a place in the cache, a reference to its pool."""

    def __init__(self, cache: JobCache, pool: object) -> None:
        self.job_id = next(_job_ids)
        self._cache = cache
        # Keeps the pool alive while the job is pending, as CPython does, so
        # that `Pool().map_async(...)` is not terminated by garbage collection.
        self._pool: object = pool
        cache.add(self)

    def _settled(self) -> None:
        self._cache.discard(self.job_id)
        self._pool = None

    def _set(self, index: int, success: bool, value: Any) -> None:
        raise NotImplementedError

    def _abandon(self, error: BaseException) -> None:
        self._set(0, False, error)


class ApplyResult(Job):
    """The result of apply_async; also the base of MapResult."""

    def __init__(
        self,
        cache: JobCache,
        pool: object,
        callback: Callback | None = None,
        error_callback: Callback | None = None,
    ) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._settling = False
        self._callback = callback
        self._error_callback = error_callback
        self._success = False
        self._value: Any = None
        super().__init__(cache, pool)

    def ready(self) -> bool:
        return self._event.is_set()

    def successful(self) -> bool:
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._success

    def wait(self, timeout: float | None = None) -> None:
        self._event.wait(timeout)

    def get(self, timeout: float | None = None) -> Any:
        self.wait(timeout)
        if not self.ready():
            raise TimeoutError
        if self._success:
            return self._value
        raise self._value

    def _set(self, index: int, success: bool, value: Any) -> None:
        if self._claim():
            self._settle(success, value)

    def _claim(self) -> bool:
        """True for the first outcome that settles the job."""
        with self._lock:
            first = not self._settling
            self._settling = True
            return first

    def _settle(self, success: bool, value: Any) -> None:
        # The callback runs before the event is set, so that get() returns
        # only after it. A callback that raises fails this job with its
        # exception instead of killing the thread that runs it (gh-83371).
        try:
            if success and self._callback is not None:
                self._callback(value)
            elif not success and self._error_callback is not None:
                self._error_callback(value)
        except BaseException as callback_error:
            if not success and callback_error.__context__ is None:
                callback_error.__context__ = value
            success, value = False, callback_error
        self._success, self._value = success, value
        self._settled()
        self._event.set()


AsyncResult = ApplyResult


class MapResult(ApplyResult):
    """The result of map_async and starmap_async: one list, filled chunk by chunk."""

    def __init__(
        self,
        cache: JobCache,
        pool: object,
        chunksize: int,
        length: int,
        callback: Callback | None = None,
        error_callback: Callback | None = None,
    ) -> None:
        super().__init__(cache, pool, callback, error_callback)
        self._chunksize = chunksize
        self._results: list[Any] = [None] * length
        self._chunks_left = -(-length // chunksize)
        if self._chunks_left == 0:
            # CPython settles an empty map without calling the callback;
            # refpool calls it with [], like every other successful job.
            self._set(0, True, [])

    def _set(self, index: int, success: bool, value: Any) -> None:
        with self._lock:
            if self._settling:
                return
            if success:
                start = index * self._chunksize
                self._results[start : start + self._chunksize] = value
                self._chunks_left -= 1
                if self._chunks_left > 0:
                    return
                value = self._results
            self._settling = True
        self._settle(success, value)


class IMapIterator(Job, Generic[T]):
    """The iterator that imap returns: results in input order, as they come."""

    def __init__(self, cache: JobCache, pool: object) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._items: collections.deque[tuple[bool, Any]] = collections.deque()
        self._delivered = 0  # outcomes moved to _items, or received if unordered
        self._length: int | None = None
        self._unsorted: dict[int, tuple[bool, Any]] = {}
        super().__init__(cache, pool)

    def __iter__(self) -> Iterator[T]:
        return self

    def next(self, timeout: float | None = None) -> T:
        with self._cond:
            if not self._cond.wait_for(self._has_next, timeout):
                raise TimeoutError
            if not self._items:
                raise StopIteration
            success, value = self._items.popleft()
        if success:
            result: T = value
            return result
        raise value

    __next__ = next

    def _has_next(self) -> bool:
        return bool(self._items) or self._delivered == self._length

    def _set(self, index: int, success: bool, value: Any) -> None:
        with self._cond:
            if self._delivered == self._length:
                return  # abandoned already
            self._accept(index, (success, value))
            self._check_settled()
            self._cond.notify_all()

    def _accept(self, index: int, outcome: tuple[bool, Any]) -> None:
        if index != self._delivered:
            self._unsorted[index] = outcome
            return
        self._items.append(outcome)
        self._delivered += 1
        while self._delivered in self._unsorted:
            self._items.append(self._unsorted.pop(self._delivered))
            self._delivered += 1

    def _set_length(self, length: int) -> None:
        """The input is exhausted after `length` tasks."""
        with self._cond:
            if self._delivered == self._length:
                return  # abandoned already
            self._length = length
            self._check_settled()
            self._cond.notify_all()

    def _check_settled(self) -> None:
        if self._delivered == self._length:
            self._settled()

    def _abandon(self, error: BaseException) -> None:
        with self._cond:
            if self._delivered == self._length:
                return
            self._unsorted.clear()
            self._items.append((False, error))
            self._delivered += 1
            self._length = self._delivered
            self._settled()
            self._cond.notify_all()


class IMapUnorderedIterator(IMapIterator[T]):
    """The iterator that imap_unordered returns: results as they come."""

    def _accept(self, index: int, outcome: tuple[bool, Any]) -> None:
        self._items.append(outcome)
        self._delivered += 1
