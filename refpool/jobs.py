"""Jobs and the job cache: what the caller holds while the pool works.

A job is made of tasks (one for apply, one per chunk for map, one per item or
chunk for imap). Outcomes arrive through `JobCache.deliver`, from whichever
component learns them: the result handler (a worker's outcome, a worker that died),
the task handler (a call that could not be pickled, an input iterator that
raised) or terminate(). The first outcome that settles a job wins; later ones
for it are ignored.

Invariants (spec JOB-1): a job is in the cache exactly while it is not settled;
each job settles exactly once, with its value or an exception.
"""

from __future__ import annotations

import collections
import itertools
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .chunking import chunk_bounds, count_chunks
from .errors import JobCancelledError, TimeoutError


def checked_timeout(timeout: object) -> float | None:
    """A timeout as threading takes it (API-16): None or a real number; infinity waits as None
    does (threading refuses it). Anything else is refused by name, even where no wait is needed."""
    if timeout is None or timeout == math.inf:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isnan(timeout):
        raise TypeError(f"timeout must be a number or None, not {timeout!r}")
    return timeout


T = TypeVar("T")
Callback = Callable[[Any], object]

_job_ids = itertools.count()


# The bookkeeping of map and imap jobs, pure, so that CrossHair can check its
# contracts (tests/contracts/test_crosshair.py). The jobs below apply it under
# their locks.


# JOB-6: the first failed chunk fails the map job as a whole, at once.
# JOB-1: a map job settles once, when its last chunk is in, and never before:
# the count of chunks due never goes below 0.
def chunk_done(chunks_left: int, success: bool) -> tuple[int, bool]:
    """After one chunk's outcome: the chunks still due, and whether the job settles now.

    pre: chunks_left >= 1
    post: __return__[0] == (chunks_left - 1 if success else chunks_left)
    post: __return__[0] >= 0
    post: __return__[1] == (not success or __return__[0] == 0)
    """
    if not success:
        return chunks_left, True
    return chunks_left - 1, chunks_left == 1


# API-4: imap yields its outcomes in input order. An outcome that arrives
# ahead of its turn waits in `pending`; one that arrives in turn is released
# with every waiting outcome that follows it without a gap.
# JOB-1: every outcome is released exactly once: nothing is lost, duplicated
# or reordered; the ones not released yet stay in `pending`, after the gap.
def release_in_order(due: int, pending: dict[int, T], position: int, item: T) -> tuple[list[T], int]:
    """Take outcome `item` of task `position`; return the outcomes now released, in order, and the
    position due next (`due` is the one due before).

    `pending` holds the outcomes that came early, by position; it is updated in place.

    pre: 0 <= due <= position
    pre: position not in pending
    pre: all(k > due for k in pending)
    post[pending]: __return__[1] == due + len(__return__[0])
    post: __return__[1] not in pending and all(k > __return__[1] for k in pending)
    post: len(__return__[0]) + len(pending) == len(__old__.pending) + 1
    post: all(pending[k] is ({**__old__.pending, position: item})[k] for k in pending)
    post: all(x is ({**__old__.pending, position: item})[due + i] for i, x in enumerate(__return__[0]))
    post: (position == due) == (len(__return__[0]) > 0)
    """
    if position != due:
        pending[position] = item
        return [], due
    released = [item]
    due += 1
    while due in pending:
        released.append(pending.pop(due))
        due += 1
    return released, due


def _settle_here(settle: Callable[[], None]) -> None:
    settle()


class JobCache:
    """The jobs that are not settled yet, by job id.

    It also carries what a job needs from the pool when it is cancelled
    (CANCEL-1): `withdraw(job_id)` takes its unstarted tasks away
    (Roster.cancel), and `in_callback_thread(settle)` has a job with an
    error_callback settled in the thread that runs callbacks (JOB-4, CANCEL-2).
    The pool's core sets both; a cache of its own (in a unit test) withdraws
    nothing and settles in place.
    """

    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()
        self.withdraw: Callable[[int], None] = lambda job_id: None
        self.in_callback_thread: Callable[[Callable[[], None]], None] = _settle_here

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.job_id] = job

    def deliver_here(self, job_id: int, position: int, success: bool, value: Any) -> bool:
        """As `deliver`, unless the job has callbacks: False, and nothing is done, then."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:
            if job.has_callbacks:
                return False
            job._set(position, success, value)
        return True

    def discard(self, job_id: int) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def deliver(self, job_id: int, position: int, success: bool, value: Any) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None:  # else it has settled already, e.g. a failed map
            job._set(position, success, value)

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

    has_callbacks = False

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

    def _set(self, position: int, success: bool, value: Any) -> None:
        raise NotImplementedError

    def _abandon(self, error: BaseException) -> None:
        self._set(0, False, error)

    def cancel(self) -> bool:
        """Cancel the job unless it has settled (CANCEL-1): its tasks that have not started
        never start, and it fails with JobCancelledError. False if it had settled."""
        raise NotImplementedError


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
        self.has_callbacks = callback is not None or error_callback is not None
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
        self._event.wait(checked_timeout(timeout))

    def get(self, timeout: float | None = None) -> Any:
        self.wait(timeout)
        if not self.ready():
            raise TimeoutError
        if self._success:
            return self._value
        raise self._value

    def _set(self, position: int, success: bool, value: Any) -> None:
        if self._claim():
            self._settle(success, value)

    def cancel(self) -> bool:
        if not self._claim():
            return False  # settled, or settling: its outcome stands
        error = JobCancelledError(self.job_id)
        self._cache.withdraw(self.job_id)
        if self._error_callback is None:
            self._settle(False, error)
        else:  # CANCEL-2: it runs where every callback runs, and get() waits for it
            self._cache.in_callback_thread(lambda: self._settle(False, error))
        return True

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
        self._chunks_left = count_chunks(length, chunksize)
        # CPython settles an empty map without calling the callback;
        # refpool calls it with [], like every other successful job.
        if self._chunks_left == 0 and self._claim():
            self._settle(True, self._results)

    def _set(self, position: int, success: bool, value: Any) -> None:
        with self._lock:
            if self._settling:
                return
            if success:
                start, stop = chunk_bounds(position, self._chunksize, len(self._results))
                self._results[start:stop] = value
            self._chunks_left, settles = chunk_done(self._chunks_left, success)
            if not settles:
                return
            if success:
                value = self._results
            self._settling = True
        self._settle(success, value)


class IMapIterator(Job, Generic[T]):
    """The iterator that imap returns: results in input order, as they come."""

    def __init__(self, cache: JobCache, pool: object) -> None:
        # `with self._lock` where nothing waits: it is `_cond`'s own lock, and
        # costs half as much as `with self._cond`, once per outcome and per next().
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._items: collections.deque[tuple[bool, Any]] = collections.deque()
        self._delivered = 0  # outcomes moved to _items, or received if unordered
        self._length: int | None = None
        self._unsorted: dict[int, tuple[bool, Any]] = {}
        self._waiting = 0  # callers waiting in next()
        super().__init__(cache, pool)

    def __iter__(self) -> Iterator[T]:
        return self

    def next(self, timeout: float | None = None) -> T:
        success, value = self._next_outcome(timeout)
        if success:
            result: T = value
            return result
        raise value

    __next__ = next

    def _next_outcome(self, timeout: float | None) -> tuple[bool, Any]:
        """The next task's outcome, taken (buffered.py counts it); StopIteration at the end,
        TimeoutError if none came in time."""
        timeout = checked_timeout(timeout)
        with self._lock:
            if not self._items:  # else no need to wait: the common case, kept short
                self._waiting += 1
                try:
                    arrived = self._cond.wait_for(self._has_next, timeout)
                finally:
                    self._waiting -= 1
                if not arrived:
                    raise TimeoutError
                if not self._items:
                    raise StopIteration
            return self._items.popleft()

    def _has_next(self) -> bool:
        return bool(self._items) or self._delivered == self._length

    @property
    def settled(self) -> bool:
        """Every outcome is in (or the job was cancelled or abandoned)."""
        return self._delivered == self._length

    def _set(self, position: int, success: bool, value: Any) -> None:
        with self._lock:
            if self._delivered == self._length:
                return  # abandoned already
            self._accept(position, (success, value))
            self._check_settled()
            if self._waiting:  # a notify with nobody waiting still costs, once per task
                self._cond.notify_all()

    def _accept(self, position: int, outcome: tuple[bool, Any]) -> None:
        released, self._delivered = release_in_order(self._delivered, self._unsorted, position, outcome)
        self._items.extend(released)

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

    def cancel(self) -> bool:
        """As Job.cancel; the results not taken yet are dropped, and `next()` raises
        JobCancelledError once, then StopIteration (CANCEL-2)."""
        with self._cond:
            if self.settled:
                return False
            self._items.clear()
            self._end_with(JobCancelledError(self.job_id))
        self._cache.withdraw(self.job_id)
        return True

    def _abandon(self, error: BaseException) -> None:
        with self._cond:
            if self.settled:
                return
            self._end_with(error)

    def _end_with(self, error: BaseException) -> None:
        """Settle now, with `error` after what the caller may take already. Caller holds _cond."""
        self._unsorted.clear()
        self._items.append((False, error))
        self._delivered += 1
        self._length = self._delivered
        self._settled()
        self._cond.notify_all()


class IMapUnorderedIterator(IMapIterator[T]):
    """The iterator that imap_unordered returns: results as they come."""

    def _accept(self, position: int, outcome: tuple[bool, Any]) -> None:
        self._items.append(outcome)
        self._delivered += 1
