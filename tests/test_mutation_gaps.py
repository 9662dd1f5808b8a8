"""Checks a sampled mutation run of the core found missing (issue 12): each kills mutants that
survived every other test on 2026-12-01."""

from __future__ import annotations

import collections
import time

import pytest

from refpool.observer import Observation, WorkerReaped

from pool_helpers import MakePool, StopsThenGoesOn, pid_of_worker, square

WAIT = 20  # seconds: a bound on every blocking call


@pytest.mark.parametrize("maxtasks", [2, 3])
def test_each_worker_runs_exactly_maxtasksperchild_tasks(make_process_pool: MakePool, maxtasks: int) -> None:
    """WORK-4: with maxtasksperchild=N >= 2, each worker runs N tasks, then exits and is replaced."""
    pool = make_process_pool(1, maxtasksperchild=maxtasks)
    pids = pool.map_async(pid_of_worker, range(3 * maxtasks), chunksize=1).get(timeout=WAIT)
    assert sorted(collections.Counter(pids).values()) == [maxtasks] * 3


@pytest.mark.parametrize("buffersize", [None, 1, 2])
def test_an_imap_input_that_raises_is_not_read_again(make_pool: MakePool, buffersize: int | None) -> None:
    """API-6: the results before the error, the error, then the end; the input is not asked
    for more after it raised, though it would yield more. (Unbuffered, the input is read
    through a generator, which ends at the error by itself; buffered, the feed must stop.)"""
    pool = make_pool(2)
    source = StopsThenGoesOn(KeyError("input failed"))
    results = pool.imap(square, source, buffersize=buffersize)
    assert results.next(timeout=WAIT) == 1
    assert results.next(timeout=WAIT) == 4
    with pytest.raises(KeyError):
        results.next(timeout=WAIT)
    with pytest.raises(StopIteration):
        results.next(timeout=WAIT)
    assert source.asked == 3


def test_idle_workers_stay_the_same_processes(make_process_pool: MakePool) -> None:
    """WORK-1, SHUT-10: an idle worker of a live pool does not exit (its check of the pool's
    process must not fire while the pool lives) and is not replaced."""
    trace: list[Observation] = []
    pool = make_process_pool(2, observer=trace.append)
    pool.map(square, range(4))
    before = sorted(h.pid for h in pool._live_core().roster.handles())
    time.sleep(1.5)  # the subject of the test: the workers stay idle longer than PARENT_CHECK_INTERVAL
    after = sorted(h.pid for h in pool._live_core().roster.handles())
    assert after == before
    assert all(h.is_alive() for h in pool._live_core().roster.handles())
    assert not any(isinstance(o, WorkerReaped) for o in trace)
