"""Pools with one bug each, for the oracle to catch (tests/conform/test_oracle.py, test_fuzz.py).

Each is one of refpool's pools with one thing changed, so that what the oracle
sees is the bug and nothing else. Targets: `broken_pools:IgnoresClose` and so
on, with tests/conform on sys.path (the tests set PYTHONPATH).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

import refpool
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
