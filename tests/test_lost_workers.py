"""A worker that dies never hangs the pool (CPython hangs: bpo-22393).

The job whose task the dead worker held fails with WorkerLostError, the pool
stays in RUN, a replacement starts, and every other job completes.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

import refpool

from pool_helpers import (
    MakePool,
    announce_and_wait,
    call_sys_exit,
    exit_abruptly,
    kill_self_on,
    pid_of_worker,
    remember_queue,
    square,
)

WAIT = 30
PROMPTLY = 10  # seconds: the bound the spec promises for reporting a lost worker


def live_worker_pids(pool: refpool.Pool, expected: int) -> set[int]:
    """The pids of the pool's workers once their number is `expected` again."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        handles = pool._live_core().roster.handles()
        if len(handles) == expected and all(h.is_alive() for h in handles):
            return {h.pid for h in handles if h.pid is not None}
        # Polling is the only way to see a count settle; each step is short.
        time.sleep(0.01)
    raise AssertionError(f"the pool did not return to {expected} live workers")


def test_sigkill_during_map_fails_that_job_and_the_pool_goes_on(make_process_pool: MakePool) -> None:
    """Checks LOST-1, LOST-2, WORK-1."""
    import multiprocessing

    queue = multiprocessing.get_context("spawn").Queue()
    pool = make_process_pool(2, initializer=remember_queue, initargs=(queue,))
    before = live_worker_pids(pool, 2)
    job = pool.map_async(announce_and_wait, range(8), chunksize=1)
    victim = queue.get(timeout=WAIT)
    started = time.monotonic()
    os.kill(victim, signal.SIGKILL)
    with pytest.raises(refpool.WorkerLostError) as caught:
        job.get(timeout=PROMPTLY)
    assert time.monotonic() - started < PROMPTLY
    assert caught.value.pid == victim and caught.value.exitcode == -signal.SIGKILL
    assert "SIGKILL" in str(caught.value)
    assert pool._state is refpool.PoolState.RUN
    after = live_worker_pids(pool, 2)
    assert victim in before and victim not in after
    assert pool.map(square, range(20)) == [x * x for x in range(20)]
    queue.close()


def test_os_exit_during_apply_async_fails_that_job_only(make_process_pool: MakePool) -> None:
    """Checks LOST-1, LOST-2."""
    pool = make_process_pool(2)
    others = [pool.apply_async(square, (i,)) for i in range(5)]
    doomed = pool.apply_async(exit_abruptly, (3,))
    started = time.monotonic()
    with pytest.raises(refpool.WorkerLostError, match="exit code 3") as caught:
        doomed.get(timeout=PROMPTLY)
    assert time.monotonic() - started < PROMPTLY
    assert caught.value.exitcode == 3
    survivors = [r for r in others if not isinstance(_outcome(r), refpool.WorkerLostError)]
    assert [r.get(WAIT) for r in survivors] == [_outcome(r) for r in survivors]
    assert pool.apply(square, (9,)) == 81
    live_worker_pids(pool, 2)


def _outcome(result: refpool.ApplyResult) -> object:
    try:
        return result.get(WAIT)
    except Exception as exc:
        return exc


def test_a_worker_that_kills_itself_in_a_map_chunk(make_process_pool: MakePool) -> None:
    """Checks LOST-1."""
    pool = make_process_pool(2)
    with pytest.raises(refpool.WorkerLostError):
        pool.map(kill_self_on, range(10), chunksize=1)
    assert pool.map(square, range(4)) == [0, 1, 4, 9]


def test_sys_exit_in_a_task_is_a_lost_worker_not_a_hang(make_process_pool: MakePool) -> None:
    """Checks LOST-1."""
    pool = make_process_pool(1)
    with pytest.raises(refpool.WorkerLostError, match="exit code 0"):
        pool.apply_async(call_sys_exit).get(timeout=PROMPTLY)
    assert pool.apply(square, (2,)) == 4


def test_imap_reports_the_lost_item_and_goes_on(make_process_pool: MakePool) -> None:
    """Checks LOST-1, LOST-3, WORK-3."""
    pool = make_process_pool(1)
    it = pool.imap(kill_self_on, range(8))
    outcomes: list[object] = []
    for _ in range(8):
        try:
            outcomes.append(it.next(timeout=WAIT))  # type: ignore[attr-defined]
        except refpool.WorkerLostError:
            outcomes.append("lost")
    # Only the item it was running is lost; those queued behind it run in its
    # replacement (LOST-3).
    assert outcomes == [0, 1, 2, 3, 4, "lost", 6, 7]


def test_a_lost_worker_after_close_still_lets_join_return(make_process_pool: MakePool) -> None:
    """Checks LOST-2, SHUT-4."""
    pool = make_process_pool(2)
    doomed = pool.apply_async(exit_abruptly, (5,))
    fine = pool.map_async(square, range(10))
    pool.close()
    pool.join()
    with pytest.raises(refpool.WorkerLostError):
        doomed.get(0)
    assert fine.ready()


def test_maxtasksperchild_replaces_workers_and_finishes_after_close(make_process_pool: MakePool) -> None:
    """Checks WORK-2, WORK-4."""
    pool = make_process_pool(2, maxtasksperchild=1)
    pending = pool.map_async(pid_of_worker, range(12), chunksize=1)
    pool.close()
    pool.join()
    pids = pending.get(0)
    assert len(set(pids)) == 12  # each worker ran exactly one task
