"""Bounded imap: `buffersize` (spec BUF-1 to BUF-6).

Counts items drawn from the input instead of timing anything: what the pool
has read is what the generator has yielded.
"""

from __future__ import annotations

import functools
import gc
import itertools
import pathlib
import threading
from collections.abc import Iterator

import pytest

import refpool
from refpool import buffered
from refpool.buffered import may_draw
from refpool.observer import JobCancelled, Observation

from pool_helpers import MakePool, append_line, identity, lines_of, square, wait_for_file

WAIT = 20  # seconds: a bound on every blocking call


class CountingInput:
    """An endless (or `length`-item) input that counts what has been drawn from it."""

    def __init__(self, length: int | None = None) -> None:
        self.drawn = 0
        self._length = length

    def __iter__(self) -> Iterator[int]:
        for item in itertools.count() if self._length is None else range(self._length):
            self.drawn += 1
            yield item


def drawn_past_the_bound(pool: refpool.Pool, method: str) -> list[tuple[int, int]]:
    """Consume a buffered imap (buffersize=8, chunksize=4) of 200 items; each (k, drawn) where,
    after the caller took k results, more than 8 chunks beyond theirs had been drawn."""
    source = CountingInput(200)
    results = getattr(pool, method)(square, source, 4, 8)
    breaches = [(0, source.drawn)] if source.drawn > 8 * 4 else []
    taken = []
    for k in range(1, 201):
        taken.append(results.next(timeout=WAIT))
        chunks_taken = -(-k // 4)
        if source.drawn > min(200, (chunks_taken + 8) * 4):
            breaches.append((k, source.drawn))
    assert sorted(taken) == [x * x for x in range(200)]
    if method == "imap":
        assert taken == [x * x for x in range(200)]
    with pytest.raises(StopIteration):
        next(results)
    return breaches


@pytest.mark.parametrize("method", ["imap", "imap_unordered"])
def test_buffersize_bounds_what_is_drawn(make_pool: MakePool, method: str) -> None:
    """BUF-1: with buffersize=8 and chunksize=4, once the caller has taken k results (items),
    at most 8 chunks beyond the chunks those came from have been drawn; never 8 + 1."""
    pool = make_pool(2)
    source = CountingInput()
    pool.imap(square, source, 4, 8).close()
    assert source.drawn == 8 * 4  # drawn when imap is called, in the caller's thread
    assert drawn_past_the_bound(pool, method) == []


def test_a_feed_that_draws_one_too_many_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """BUF-1's check catches a seeded off-by-one (gh-131466: buffersize + 1 while waiting)."""
    monkeypatch.setattr(buffered, "may_draw", lambda drawn, taken, buffersize: drawn - taken <= buffersize)
    with refpool.ThreadPool(2) as pool:
        assert drawn_past_the_bound(pool, "imap") != []


def test_a_slot_is_freed_when_a_result_is_taken_not_when_it_is_ready(make_pool: MakePool) -> None:
    """BUF-1: results that are ready but not taken keep their slots."""
    pool = make_pool(2)
    source = CountingInput()
    results = pool.imap(square, source, buffersize=3)
    assert results.next(timeout=WAIT) == 0
    pool.apply(square, (1,))  # every task drawn has run by now, or soon: nothing more is drawn
    assert source.drawn == 4
    results.close()


@pytest.mark.parametrize(
    ("buffersize", "error", "message"),
    [
        (1.5, TypeError, "buffersize must be an integer or None"),
        ("8", TypeError, "buffersize must be an integer or None"),
        (0, ValueError, "buffersize must be None or > 0"),
        (-1, ValueError, "buffersize must be None or > 0"),
    ],
)
def test_a_bad_buffersize_is_refused_before_anything_is_drawn(
    make_pool: MakePool, buffersize: object, error: type[Exception], message: str
) -> None:
    """BUF-2: CPython's errors, with the value in a note, and nothing drawn or queued."""
    pool = make_pool(1)
    for method in (pool.imap, pool.imap_unordered):
        source = CountingInput()
        with pytest.raises(error, match=message) as raised:
            method(square, source, 1, buffersize)
        assert repr(buffersize) in "".join(raised.value.__notes__)
        assert source.drawn == 0
    assert len(pool._core.cache) == 0


def test_buffersize_true_counts_as_one_as_in_cpython(make_pool: MakePool) -> None:
    """BUF-2: a bool passes (it is an int)."""
    pool = make_pool(1)
    source = CountingInput(3)
    results = pool.imap(square, source, buffersize=True)
    assert source.drawn == 1
    assert list(results) == [0, 1, 4]


def test_map_takes_no_buffersize(make_pool: MakePool) -> None:
    """BUF-2: map's result holds every result, so a bound on reading would bound nothing."""
    pool = make_pool(1)
    with pytest.raises(TypeError, match="buffersize"):
        pool.map(square, range(3), 1, buffersize=2)  # type: ignore[call-arg]


def test_other_jobs_run_while_a_buffered_imap_waits_for_its_consumer(make_pool: MakePool) -> None:
    """BUF-3: jobs submitted after a buffered imap whose consumer takes nothing still run."""
    pool = make_pool(2)
    waiting = pool.imap(square, CountingInput(), buffersize=2)
    assert pool.apply_async(square, (7,)).get(timeout=WAIT) == 49
    assert pool.map_async(square, range(5)).get(timeout=WAIT) == [0, 1, 4, 9, 16]
    assert list(pool.imap(square, iter(range(3)))) == [0, 1, 4]
    assert waiting.next(timeout=WAIT) == 0


def test_close_and_join_with_a_partly_consumed_buffered_imap(make_pool: MakePool) -> None:
    """BUF-4: neither hangs (gh-155477) nor ends as if the input had ended: every drawn task's
    result comes, then UnreadInputError saying how many items were drawn."""
    pool = make_pool(2)
    results = pool.imap(square, range(1000), buffersize=2)
    assert results.next(timeout=WAIT) == 0
    pool.close()
    pool.join()
    seen = []
    with pytest.raises(refpool.UnreadInputError) as raised:
        while True:
            seen.append(results.next(timeout=WAIT))
    assert seen == [x * x for x in range(1, len(seen) + 1)]
    assert raised.value.drawn == len(seen) + 1
    with pytest.raises(StopIteration):
        results.next(timeout=WAIT)


def test_close_with_the_whole_input_drawn_ends_normally(make_pool: MakePool) -> None:
    """BUF-4: if the input had ended, the iterator ends as usual: no false error."""
    pool = make_pool(2)
    results = pool.imap(square, iter(range(3)), buffersize=3)
    pool.close()
    pool.join()
    assert list(results) == [0, 1, 4]


def test_terminate_fails_a_buffered_imap(make_pool: MakePool) -> None:
    """BUF-5: after terminate(), next() raises PoolTerminatedError instead of waiting forever."""
    pool = make_pool(2)
    results = pool.imap(square, CountingInput(), buffersize=4)
    pool.terminate()
    with pytest.raises(refpool.PoolTerminatedError):
        for _ in range(5):
            results.next(timeout=WAIT)


@pytest.mark.parametrize("how", ["close", "drop"])
def test_a_closed_or_dropped_buffered_imap_is_cancelled(
    make_pool: MakePool, tmp_path: pathlib.Path, how: str
) -> None:
    """BUF-6: its tasks that have not started never run, it draws nothing more, and the pool
    goes on."""
    pool = make_pool(1)
    gate, log = str(tmp_path / "gate"), str(tmp_path / "ran")
    blocker = pool.apply_async(wait_for_file, (gate,))
    source = CountingInput()
    results = pool.imap(functools.partial(append_line, log), source, buffersize=4)
    assert source.drawn == 4  # queued behind the blocker, in the one worker's inbox
    if how == "close":
        results.close()
    else:
        del results
        gc.collect()
    pathlib.Path(gate).touch()
    assert blocker.get(timeout=WAIT) == gate
    assert pool.apply_async(identity, ("after",)).get(timeout=WAIT) == "after"
    assert lines_of(log) == []
    assert source.drawn == 4


def test_may_draw_keeps_the_bound() -> None:
    """BUF-1: the pure rule (CrossHair checks its contract too)."""
    assert may_draw(7, 0, 8)
    assert not may_draw(8, 0, 8)
    assert may_draw(8, 1, 8)


def test_an_iterator_collected_by_a_thread_holding_the_roster_lock_does_not_deadlock() -> None:
    """BUF-6: the collector may free a dropped iterator in any thread, also one of the pool's
    own while it holds the roster's lock; the cancel then completes once the lock is free."""
    cancelled = threading.Event()

    def observe(observation: Observation) -> None:
        if isinstance(observation, JobCancelled):
            cancelled.set()

    with refpool.ThreadPool(2, observer=observe) as pool:
        results = pool.imap(square, iter(range(100)), buffersize=2)
        assert results.next(timeout=WAIT) == 0
        cycle: list[object] = [results]
        cycle.append(cycle)  # only the cycle holds the iterator now
        del results, cycle
        roster = pool._live_core().roster
        collected = threading.Event()

        def collect_under_the_roster_lock() -> None:
            with roster.cond:  # as a handler thread holds it, briefly, all the time
                gc.collect()  # as any allocation there may do
            collected.set()

        threading.Thread(target=collect_under_the_roster_lock, daemon=True).start()
        assert collected.wait(WAIT)
        assert cancelled.wait(WAIT)
        assert pool.apply_async(square, (3,)).get(timeout=WAIT) == 9
