"""Pools with one bug each, for the oracle to catch (tests/conform/test_oracle.py, test_fuzz.py).

Each is one of refpool's pools with one thing changed, so that what the oracle
sees is the bug and nothing else. Targets: `broken_pools:IgnoresClose` and so
on, with tests/conform on sys.path (the tests set PYTHONPATH).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import refpool
import refpool.pool
from refpool import roster as roster_module
from refpool.roster import Roster, WorkerRecord


class IgnoresClose(refpool.ThreadPool):
    """close() does nothing: submissions after it are accepted (LIFE-3 wants them refused)."""

    def close(self) -> None:
        pass

    def join(self) -> None:
        # The pool is still running, so the real join() would refuse; a pool that
        # ignores close() and also joins quietly shows only the accepted submission.
        pass


class ClosesOnlyAtJoin(refpool.ThreadPool):
    """close() is put off until join(): the pool goes on accepting submits after close() (LIFE-1)."""

    _close_requested = False

    def close(self) -> None:
        self._close_requested = True

    def join(self) -> None:
        if self._close_requested:
            super().close()
        super().join()


class TerminateOnlyCloses(refpool.ThreadPool):
    """terminate() closes: the jobs it should stop run on and complete, as if closed (LIFE-1)."""

    def terminate(self) -> None:
        self.close()


class CloseTerminates(refpool.Pool):
    """close() terminates: a job submitted before it is stopped instead of completed (LIFE-1)."""

    def close(self) -> None:
        self.terminate()


class ReprWithoutState(refpool.ThreadPool):
    """repr() is object's, with no state= (as billiard's and Ray's): only API-9 may fail for it."""

    def __repr__(self) -> str:
        return object.__repr__(self)


class RefusesALargerPool(refpool.Pool):
    """Refuses a pool larger than the first one made in its process, as Ray's Pool(n) does: a
    check that first makes a one-worker probe pool cannot make its own (each check is
    self-contained: it uses only the pools its clause needs)."""

    first_size: int | None = None

    def __init__(self, processes: int | None = None, *args: Any, **kwargs: Any) -> None:
        first = RefusesALargerPool.first_size
        if first is not None and processes is not None and processes > first:
            raise ValueError(f"this process made a pool of {first} first: no pool of {processes} now")
        super().__init__(processes, *args, **kwargs)
        if first is None:
            RefusesALargerPool.first_size = processes


class _DropsLast:
    def __init__(self, result: Any) -> None:
        self._result = result

    def get(self, timeout: float | None = None) -> Any:
        return self._result.get(timeout)[:-1]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)


class MapDropsLastResult(refpool.ThreadPool):
    """map_async's result loses its last item (API-2)."""

    def map_async(self, *args: Any, **kwds: Any) -> Any:
        return _DropsLast(super().map_async(*args, **kwds))


class JoinHangs(refpool.ThreadPool):
    """join() after close() never returns (SHUT-4)."""

    def join(self) -> None:
        super().join()
        threading.Event().wait()


class DropsAResult(refpool.ThreadPool):
    """map() loses its last result (API-2)."""

    def map(
        self, func: Callable[..., Any], iterable: Iterable[Any], chunksize: int | None = None
    ) -> list[Any]:
        return super().map(func, iterable, chunksize)[:-1]


class _ForgetsOneSentinel(Roster):
    forgotten: WorkerRecord | None = None  # the first worker due a sentinel never gets it

    def _send_sentinel(self, record: WorkerRecord, touched: list[WorkerRecord]) -> None:
        if self.forgotten is None:
            self.forgotten = record
        if record is not self.forgotten:
            super()._send_sentinel(record, touched)


class OneSentinelTooFew(refpool.Pool):
    """The roster sends one shutdown sentinel too few, so join() waits forever (SHUT-2, SHUT-4)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._live_core().roster.__class__ = _ForgetsOneSentinel


class CrashesOnClose(refpool.ThreadPool):
    """close() kills the process it runs in: the oracle must report CRASH, and survive."""

    def close(self) -> None:
        os._exit(7)


class LeavesPipesToTheCollector(refpool.Pool):
    """Closes no worker's pipes itself, and sits in a reference cycle: its descriptors stay
    open until the garbage collector runs (SHUT-6), and while the caller holds it (SHUT-7)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        transport: Any = self._live_core()._transport
        transport.release = lambda handle: None
        transport._unreleased = _Forgetful()
        self._cycle = self


class _Forgetful(dict[int, Any]):
    """A transport's record of workers to release that records none."""

    def __setitem__(self, key: int, value: Any) -> None:
        pass


class KeepsTheLastInput(refpool.ThreadPool):
    """Keeps the input of the last map (SHUT-8: nothing of a finished task stays referenced)."""

    def map_async(self, func: Callable[..., Any], iterable: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        self._last_input = iterable
        return super().map_async(func, iterable, *args, **kwargs)


class NeverGivesUpOnItsInitializer(refpool.ThreadPool):
    """Tasks wait for a worker whose initializer raises, forever, as in CPython (LOST-4)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        roster_module.INITIALIZER_FAILURES_BEFORE_FAILING = 10**9  # type: ignore[misc]
        super().__init__(*args, **kwargs)


# --- bounded imap, task timeouts, cancelling (BUF, TIME, CANCEL) -------------------


class BufferedImapReadsItAll(refpool.ThreadPool):
    """imap(buffersize=...) reads its whole input before it yields anything (BUF-1)."""

    def imap(self, func: Callable[[Any], Any], iterable: Iterable[Any], *args: Any, **kwargs: Any) -> Any:
        return super().imap(func, list(iterable), *args, **kwargs)

    def imap_unordered(
        self, func: Callable[[Any], Any], iterable: Iterable[Any], *args: Any, **kwargs: Any
    ) -> Any:
        return super().imap_unordered(func, list(iterable), *args, **kwargs)


class _Slots:
    """What a buffered imap built as CPython 3.16 builds it needs: its input, drawn one item per
    free slot by the pool's task handler, and a slot freed each time the caller takes a result."""

    def __init__(self, iterable: Iterable[Any], buffersize: int) -> None:
        self._items = iter(iterable)
        self._free = threading.Semaphore(buffersize)

    def draw(self) -> Iterator[Any]:
        while self._free.acquire(timeout=60):  # bounded, so that nothing outlives the check long
            try:
                item = next(self._items)
            except StopIteration:
                return
            yield item

    def took_one(self) -> None:
        self._free.release()


class _FreesASlotPerResult:
    def __init__(self, results: Any, slots: _Slots) -> None:
        self._results = results
        self._slots = slots

    def __iter__(self) -> _FreesASlotPerResult:
        return self

    def __next__(self) -> Any:
        return self.next()

    def next(self, timeout: float | None = None) -> Any:
        try:
            return self._results.next(timeout)
        finally:
            self._slots.took_one()


class BufferedImapBlocksTheTaskHandler(refpool.ThreadPool):
    """imap(buffersize=b) as CPython 3.16 does it: the pool's task handler draws the input, and
    waits there for a free slot, so a buffered imap whose caller takes no result holds back every
    job submitted after it (BUF-3). It keeps BUF-1's bound. Chunks are left out: chunksize 1 only."""

    def imap(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int = 1,
        buffersize: int | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        if buffersize is None:
            return super().imap(func, iterable, chunksize, timeout=timeout)
        slots = _Slots(iterable, buffersize)
        return _FreesASlotPerResult(super().imap(func, slots.draw(), timeout=timeout), slots)

    def imap_unordered(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int = 1,
        buffersize: int | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        if buffersize is None:
            return super().imap_unordered(func, iterable, chunksize, timeout=timeout)
        slots = _Slots(iterable, buffersize)
        return _FreesASlotPerResult(super().imap_unordered(func, slots.draw(), timeout=timeout), slots)


class _EndsAtUnreadInput:
    def __init__(self, results: Any) -> None:
        self._results = results

    def __iter__(self) -> _EndsAtUnreadInput:
        return self

    def __next__(self) -> Any:
        return self.next()

    def next(self, timeout: float | None = None) -> Any:
        try:
            return self._results.next(timeout)
        except refpool.UnreadInputError:
            raise StopIteration from None


class BufferedImapEndsQuietlyOnClose(refpool.ThreadPool):
    """After close(), a partly drawn buffered imap ends as if its input had ended, as CPython 3.16's
    does (BUF-4 wants an error after the results drawn)."""

    def imap(self, *args: Any, **kwargs: Any) -> Any:
        return _EndsAtUnreadInput(super().imap(*args, **kwargs))

    def imap_unordered(self, *args: Any, **kwargs: Any) -> Any:
        return _EndsAtUnreadInput(super().imap_unordered(*args, **kwargs))


class CancelLetsQueuedTasksRun(refpool.ThreadPool):
    """cancel() settles the job, but its tasks that have not started still run (CANCEL-1)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._live_core().cache.withdraw = lambda job_id: None


class TimeoutDoesNotStopTheTask(refpool.Pool):
    """Accepts a task timeout, and then ignores it: the task runs on (TIME-2)."""

    def _check_task_timeout(self, timeout: object) -> float | None:
        refpool.pool.check_task_timeout(timeout)
        return None


class _TimeoutAsWaitTimeout:
    def __init__(self, job: Any) -> None:
        self._job = job

    def get(self, timeout: float | None = None) -> Any:
        try:
            return self._job.get(timeout)
        except refpool.TaskTimeoutError as error:
            raise multiprocessing.TimeoutError(str(error)) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._job, name)


class TaskTimeoutLooksLikeAWait(refpool.Pool):
    """A task that ran past its timeout fails with multiprocessing.TimeoutError, the error of a
    get(timeout) that only stopped waiting, so code that waits again waits for nothing (TIME-3)."""

    def apply_async(self, *args: Any, **kwargs: Any) -> Any:
        return _TimeoutAsWaitTimeout(super().apply_async(*args, **kwargs))
