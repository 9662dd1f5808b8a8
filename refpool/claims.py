"""The claim word: how a worker and the parent agree, atomically, on which tasks have started.

A process worker holds several tasks at once, written ahead into its inbox
(roster.py), and runs them in order. The parent may want one of them back
before it starts: to give it to a worker that is idle (WORK-5), or because
the worker died (LOST-3). Who decides? Each task a worker is sent carries its
number among the tasks sent to that worker: 1, 2, 3, ... Beside each worker
the parent keeps two counters that both can reach:

    claimed   the number of the last task the worker has started
    revoked   every task numbered up to here that the worker has not started
              belongs to the parent again

The worker *claims* task n before it starts it: under the lock, if
n <= revoked it skips the task, else it sets claimed = n and runs it. The
parent *takes back* a worker's unstarted tasks: under the lock, it reads
claimed and sets revoked to the number of the last task it has sent; the
tasks numbered above `claimed` are then its own again, and the worker will
skip each of them (WORK-6). Both counters only grow.

The race, as numbered interleavings (worker W holds task n, not yet started;
the parent P takes back W's unstarted tasks):
1. W locks, reads revoked < n, sets claimed = n, unlocks, runs n.
   P locks, reads claimed = n: n has started, P does not take it; unlocks.
2. P locks, reads claimed < n, sets revoked >= n, unlocks, gives n to X.
   W locks, reads revoked >= n: it skips n. n runs once, in X.
3. Without the lock (models/pool.pml, BUG_CLAIM_WITHOUT_LOCK): W reads
   revoked < n; P reads claimed < n, sets revoked >= n and gives n to X;
   W sets claimed = n and runs n: n runs twice. The lock makes W's read and
   write one step, and P's read and write another, so that 1 or 2 happens.
4. A worker that skips nothing (BUG_TAKE_BACK_WITHOUT_SKIP) runs n in 2 as
   well as X: twice again.

A third word records when the worker claimed its last task (CLOCK_MONOTONIC,
which every process of the machine shares): the parent reads it to time a
task that has a `timeout` from the moment it started (TIME-1).

The counters live in a few bytes of shared memory (a memfd), and the lock
is a POSIX record lock (`fcntl.lockf`) on it. A record lock is released by
the kernel when its process dies, so a worker killed while it holds the lock
cannot block the parent's next take-back; a semaphore left held by a dead
process would. Record locks belong to a process, not a thread: in the parent
only one thread takes back at a time (under the roster's lock).

A thread worker needs no counters and no lock: its inbox is a deque in the
parent's memory (`ThreadInbox`). The worker claims its next task by taking
it from the left end; the parent takes back from the right end. Under the
GIL each of these is one atomic step, so every task is taken by exactly one
of them: interleavings 1 and 2 above, with the deque as the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.reduction import DupFd
from queue import Empty, SimpleQueue
from typing import Any, Final

_COUNTERS: Final = struct.Struct("=qqq")  # claimed, revoked, when `claimed` was claimed (ns)
_REVOKED: Final = struct.Struct("=q")
_REVOKED_AT: Final = 8  # byte offset of `revoked`


# WORK-6: the decision, pure, so that CrossHair can check it (tests/contracts/).
# Each task starts at most once: a worker starts task n only if the parent has
# not taken it back, and a task the parent takes back is one the worker has
# not claimed.
def may_start(number: int, revoked: int) -> bool:
    """Whether the worker may start the task numbered `number` (else it skips it).

    pre: number >= 1 and revoked >= 0
    post: __return__ == (number > revoked)
    """
    return number > revoked


def taken_back(numbers: list[int], claimed: int) -> list[int]:
    """Of the task numbers a worker holds, in order, those the parent gets back after a take-back
    that saw `claimed`: every one the worker has not started, in the same order.

    pre: all(a < b for a, b in zip(numbers, numbers[1:]))
    post: all(n > claimed for n in __return__)
    post: [n for n in numbers if n <= claimed] + __return__ == numbers
    """
    return [n for n in numbers if n > claimed]


class ThreadInbox:
    """A thread worker's inbox: tasks and the sentinel, numbered tasks first-in first-out.

    The roster puts into it under its lock (that never blocks); the worker
    takes from the left and the parent takes back from the right. The
    doorbell wakes the worker when something is put while it has nothing.
    """

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._doorbell: SimpleQueue[None] = SimpleQueue()

    def put(self, items: Sequence[Any]) -> None:
        self._items.extend(items)
        self._doorbell.put(None)

    def take(self) -> Any | None:
        """The worker's step: its next task (now claimed) or the sentinel; None if empty."""
        try:
            return self._items.popleft()
        except IndexError:
            return None

    def take_back(self, last_sent: int) -> int:
        taken = []
        while True:
            try:
                taken.append(self._items.pop())
            except IndexError:
                break
        if not taken:
            return last_sent  # everything sent has been taken by the worker
        oldest_number, _ = taken[-1]  # a take-back never meets a sentinel: see roster.py
        return int(oldest_number) - 1

    def started(self) -> tuple[int, int]:
        raise NotImplementedError("a thread worker's task cannot be stopped, so it is never timed (TIME-4)")

    def wait(self, stopped: Callable[[], bool]) -> None:
        """Sleep until something is put or `stopped()` holds; rings left from what was taken
        already are dropped first, so that a worker with nothing wakes only for something new.

        `stopped` is asked after the drop: the ring of a kill that came between the worker's
        last look and this call is among those dropped, and only the kill's flag is left to
        say that it came (with the flag asked before, terminate() could wait for ever)."""
        with contextlib.suppress(Empty):
            while True:
                self._doorbell.get_nowait()
        if not self._items and not stopped():
            self._doorbell.get()

    def ring(self) -> None:
        self._doorbell.put(None)


class SharedClaimWord:
    """A process worker's claim word: 24 bytes of shared memory under a record lock.

    Made by the parent and passed to the worker when it starts: a forked worker
    inherits it; a spawned one receives a duplicate of its file descriptor.
    """

    def __init__(self, fd: int | None = None) -> None:
        if fd is None:
            fd = _anonymous_file(_COUNTERS.size)
        self._fd = fd
        self._counters: memoryview | None = None  # mapped in the worker only: it claims per task
        self._closer = weakref.finalize(self, _close_fd, fd)

    def fileno(self) -> int:
        return self._fd

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Only while a worker is being spawned (DupFd refuses otherwise).
        return _attach, (DupFd(self._fd),)

    def claim(self, number: int) -> bool:
        counters = self._counters
        if counters is None:
            counters = self._counters = memoryview(mmap.mmap(self._fd, _COUNTERS.size)).cast("q")
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            if not may_start(number, counters[1]):
                return False
            counters[0] = number
            counters[2] = time.monotonic_ns()
            return True
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def take_back(self, last_sent: int) -> int:
        # The parent does this rarely, so it reads and writes with pread and
        # pwrite instead of keeping a mapping (and a second descriptor) open.
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            claimed, revoked, _ = _COUNTERS.unpack(os.pread(self._fd, _COUNTERS.size, 0))
            if last_sent > revoked:
                os.pwrite(self._fd, _REVOKED.pack(last_sent), _REVOKED_AT)
            return int(claimed)
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def started(self) -> tuple[int, int]:
        """The number of the last task the worker has started, and when it claimed it
        (`time.monotonic_ns()`); (0, 0) before its first."""
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            claimed, _, claimed_at = _COUNTERS.unpack(os.pread(self._fd, _COUNTERS.size, 0))
            return int(claimed), int(claimed_at)
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._closer()


def _anonymous_file(size: int) -> int:
    """A file of `size` zero bytes that exists only while a descriptor refers to it."""
    if hasattr(os, "memfd_create"):  # Linux
        fd = os.memfd_create("refpool-claim")
    else:
        import tempfile  # here: every worker imports this module, and only the parent needs it

        with tempfile.TemporaryFile() as unnamed:
            fd = os.dup(unnamed.fileno())
    os.ftruncate(fd, size)
    return fd


def _attach(fd: Any) -> SharedClaimWord:  # a DupFd, which typeshed calls a function
    return SharedClaimWord(fd.detach())


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
