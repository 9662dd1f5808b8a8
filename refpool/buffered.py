"""What `imap` returns when it needs more than the job itself: a bounded input, chunks.

`imap(..., buffersize=b)` (BUF-1) draws its input in the caller's thread, not
in the task handler: `b` tasks when it is called, then one each time the
caller takes a result. So a buffered imap that waits for its consumer holds
back nothing else: the task handler never waits on its input, and other
jobs' tasks go out as usual (BUF-3; CPython reads a buffered input in its
one task-handler thread, which blocks every job submitted after it).

The tasks drawn are submitted to the pool as small batches of the same job,
numbered on from the last (TaskBatch.first_position). What can stop the
drawing, and what the caller then sees:
- the input ends: the job learns its length, and the iterator ends after
  the last result;
- the input raises: the error takes the next task's place (API-6);
- the pool was closed (BUF-4): one more item is drawn to find out whether
  the input had ended; if it had not, `UnreadInputError` takes the next
  task's place, so the iterator never ends as if the input had;
- the pool was terminated (BUF-5): the job fails with PoolTerminatedError;
- the job was cancelled, by `cancel()`, `close()` or the iterator being
  dropped (BUF-6, CANCEL-1).
"""

from __future__ import annotations

import collections
import itertools
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from .errors import UnreadInputError
from .jobs import IMapIterator
from .lifecycle import PoolState
from .messages import Call

T = TypeVar("T")

# Submits one task of the job at the given position, if the pool is running and
# the job has not settled; returns the pool's state (the task went out only if
# it is RUN), or None if the job has settled.
SubmitTask = Callable[[int, Call], PoolState | None]


# BUF-1: a task may be drawn only while fewer than `buffersize` drawn tasks
# have results the caller has not taken. Pure, so that CrossHair checks it.
def may_draw(drawn: int, taken: int, buffersize: int) -> bool:
    """Whether one more task may be drawn from the input.

    pre: 0 <= taken <= drawn and buffersize >= 1 and drawn - taken <= buffersize
    post: __return__ == (drawn - taken < buffersize)
    post: not __return__ or drawn + 1 - taken <= buffersize
    """
    return drawn - taken < buffersize


class InputFeed:
    """Draws a buffered imap's input, a task at a time, while it has free slots (BUF-1)."""

    def __init__(
        self,
        job: IMapIterator[Any],
        items: Iterator[Any],
        chunksize: int,
        make_call: Callable[[tuple[Any, ...]], Call],
        buffersize: int,
        submit: SubmitTask,
    ) -> None:
        self._job = job
        self._items = items
        self._chunksize = chunksize
        self._make_call = make_call
        self._buffersize = buffersize
        self._submit = submit
        self._lock = threading.Lock()  # callers in several threads draw one at a time
        self.drawn = 0  # tasks drawn and submitted
        self.taken = 0  # results the caller has taken
        self.items_drawn = 0  # input items in the tasks drawn
        self._open = True

    def took_one(self) -> None:
        """The caller has taken a result: its slot is free (BUF-1)."""
        with self._lock:
            self.taken += 1
        self.fill()

    def fill(self) -> None:
        """Draw and submit tasks while there are free slots and the input lasts."""
        with self._lock:
            while self._open and may_draw(self.drawn, self.taken, self._buffersize):
                if self._job.settled:  # cancelled or terminated: nothing more is wanted
                    self._open = False
                    return
                self._draw_one()

    def _draw_one(self) -> None:
        try:
            chunk = tuple(itertools.islice(self._items, self._chunksize))
        except Exception as exc:  # the input's own error, in its place (API-6)
            self._end(exc)
            return
        if not chunk:
            self._open = False
            self._job._set_length(self.drawn)
            return
        state = self._submit(self.drawn, self._make_call(chunk))
        if state is PoolState.RUN:
            self.drawn += 1
            self.items_drawn += len(chunk)
        elif state is PoolState.CLOSE:
            self._end(UnreadInputError(self.items_drawn))  # BUF-4: never ended in silence
        else:  # terminated: the job fails with PoolTerminatedError (BUF-5); or it was cancelled
            self._open = False

    def _end(self, error: Exception) -> None:
        """No more tasks: `error` takes the place of the next one."""
        self._open = False
        self._job._set(self.drawn, False, error)
        self._job._set_length(self.drawn + 1)


# How long the collector waits for a dropped iterator's cancel (see below).
_CANCEL_WAIT = 0.25  # seconds


def _cancel_elsewhere(job: IMapIterator[Any]) -> None:
    """Cancel a dropped iterator's job in a thread of its own (BUF-6), and wait for it briefly.

    The collector frees an iterator caught in a reference cycle in whichever
    thread allocates, even one that holds a lock the cancel needs (the
    roster's, the lifecycle's, the job's): cancelling there would wait for
    itself (found by the oracle's BUF-6 check's author, with gc thresholds
    of 10). A new thread holds none of them. Waiting for it makes the cancel
    done by the time `del` or `gc.collect()` returns in a thread that holds
    no such lock, which is the common case; in one that does, the wait ends
    after `_CANCEL_WAIT` and the cancel finishes once the lock is free.
    """
    canceller = threading.Thread(target=job.cancel, name="refpool-cancel-dropped", daemon=True)
    canceller.start()
    canceller.join(_CANCEL_WAIT)


class IMapResults(Generic[T]):
    """The iterator `imap` returns for a buffered input or chunks (for neither, the job itself).

    For chunksize > 1 it yields the items of each chunk's result; after an
    error it ends, as CPython's generator does. A buffered one takes each
    task's result from the job before it draws the next task (BUF-1), and is
    cancelled when closed or dropped (BUF-6).
    """

    def __init__(self, job: IMapIterator[Any], feed: InputFeed | None, chunked: bool) -> None:
        self._job = job
        self._feed = feed
        self._chunked = chunked
        self._chunk: collections.deque[Any] = collections.deque()
        self._done = False
        if feed is not None:
            # Cancels the job when the caller drops this iterator. Not at exit:
            # the pool's own finalizer terminates it then.
            weakref.finalize(self, _cancel_elsewhere, job).atexit = False

    @property
    def job_id(self) -> int:
        return self._job.job_id

    def __iter__(self) -> IMapResults[T]:
        return self

    def next(self, timeout: float | None = None) -> T:
        if self._chunk:
            item: T = self._chunk.popleft()
            return item
        if self._done:
            raise StopIteration
        success, value = self._job._next_outcome(timeout)  # StopIteration, TimeoutError: nothing taken
        if self._feed is not None:
            self._feed.took_one()
        if not success:
            if self._chunked:
                self.close()  # as CPython's generator: an error ends it
            raise value
        if not self._chunked:
            result: T = value
            return result
        self._chunk.extend(value)
        return self.next(timeout)  # a chunk is never empty: this returns its first item

    __next__ = next

    def cancel(self) -> bool:
        """Cancel the job (CANCEL-1); see IMapIterator.cancel."""
        self._chunk.clear()
        return self._job.cancel()

    def close(self) -> None:
        """Stop iterating. A buffered imap's job is cancelled: its unstarted tasks never run
        and no more input is drawn (BUF-6)."""
        self._done = True
        self._chunk.clear()
        if self._feed is not None:
            self._job.cancel()
