"""close, terminate, join, garbage collection: nothing is left behind, nothing hangs."""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
import time

import pytest

import refpool
from refpool.claims import ThreadInbox

from pool_helpers import MakePool, announce_and_wait, remember_queue, sleep_for, square

WAIT = 30


def handler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("refpool-", "ThreadPoolWorker-"))]


def assert_nothing_left(pool: refpool.Pool) -> None:
    core = pool._live_core()
    threads = [core.worker_handler.thread, core.task_handler.thread, core.result_handler.thread]
    assert not any(t.is_alive() for t in threads)
    assert not any(h.is_alive() for h in core.roster.handles())
    assert multiprocessing.active_children() == []
    assert handler_threads() == []


def test_after_close_and_join_no_worker_or_handler_is_alive(make_pool: MakePool) -> None:
    """Checks SHUT-3, SHUT-4, SHUT-6."""
    pool = make_pool(3)
    assert pool.map(square, range(30)) == [x * x for x in range(30)]
    pool.close()
    pool.join()
    assert_nothing_left(pool)


def test_after_terminate_and_join_no_worker_or_handler_is_alive(make_pool: MakePool) -> None:
    """Checks SHUT-4, SHUT-6."""
    pool = make_pool(2)
    pool.map_async(sleep_for, [0.2] * 6, chunksize=1)
    pool.terminate()
    pool.join()
    assert_nothing_left(pool)


def test_terminate_fails_pending_jobs_instead_of_leaving_them(make_process_pool: MakePool) -> None:
    """Checks SHUT-5."""
    queue = multiprocessing.get_context("spawn").Queue()
    pool = make_process_pool(1, initializer=remember_queue, initargs=(queue,))
    busy = pool.apply_async(announce_and_wait, (0,))
    waiting = pool.map_async(square, range(10))
    queue.get(timeout=WAIT)  # the worker is inside the task
    pool.terminate()
    for job in (busy, waiting):
        with pytest.raises(refpool.PoolTerminatedError):
            job.get(WAIT)
    pool.join()
    assert_nothing_left(pool)
    queue.close()


def test_terminate_from_a_callback_does_not_deadlock(make_pool: MakePool) -> None:
    """Checks SHUT-4."""
    pool = make_pool(2)
    done = threading.Event()

    def stop(_: object) -> None:
        pool.terminate()
        done.set()

    pool.apply_async(square, (2,), callback=stop)
    assert done.wait(WAIT)
    pool.join()
    assert_nothing_left(pool)


def test_join_from_a_callback_after_close_does_not_deadlock(make_pool: MakePool) -> None:
    """Checks SHUT-4."""
    pool = make_pool(2)
    joined = threading.Event()

    def close_and_join(_: object) -> None:
        pool.close()
        pool.join()
        joined.set()

    job = pool.apply_async(square, (2,), callback=close_and_join)
    assert job.get(WAIT) == 4 and joined.is_set()


def test_join_after_a_join_from_a_callback_returns(make_pool: MakePool) -> None:
    """Checks SHUT-4: a join() in a callback did not close what the result handler waits on,
    so the caller's own join() returns too (it waited for ever: found by the mutation run)."""
    pool = make_pool(2)
    joined = threading.Event()

    def join_in_callback(_: object) -> None:
        pool.join()
        joined.set()

    job = pool.apply_async(square, (2,), callback=join_in_callback)
    pool.close()
    assert job.get(WAIT) == 4 and joined.is_set()
    finished = threading.Thread(target=pool.join, daemon=True)
    finished.start()
    finished.join(WAIT)
    assert not finished.is_alive(), "join() after a join() from a callback never returned"
    assert_nothing_left(pool)


def test_a_dropped_running_pool_warns_and_is_terminated() -> None:
    """Checks LIFE-7."""
    pool = refpool.Pool(2, context=multiprocessing.get_context("fork"))
    core = pool._live_core()
    with pytest.warns(ResourceWarning, match="unclosed running multiprocessing pool"):
        del pool
        gc.collect()
    assert core.state is refpool.PoolState.TERMINATE
    core.join()
    assert multiprocessing.active_children() == []


def test_a_pending_job_keeps_its_pool_alive() -> None:
    # As in CPython, the pool lives until the job settles; then, unclosed, it warns.
    """Checks LIFE-7."""
    with pytest.warns(ResourceWarning, match="unclosed running"):
        result = refpool.ThreadPool(2).map_async(sleep_for, [0.05] * 4)
        gc.collect()
        assert result.get(WAIT) == [0.05] * 4
        gc.collect()


def test_closed_pool_that_is_dropped_does_not_warn() -> None:
    """Checks LIFE-7."""
    pool = refpool.ThreadPool(1)
    pool.close()
    pool.join()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        del pool
        gc.collect()


def test_terminate_twice_and_join_twice_are_harmless(make_pool: MakePool) -> None:
    """Checks LIFE-4."""
    pool = make_pool()
    pool.terminate()
    pool.terminate()
    pool.join()
    pool.join()
    assert pool._state is refpool.PoolState.TERMINATE


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_pools_leave_no_file_descriptors_behind() -> None:
    """Checks SHUT-6."""
    gc.collect()  # pools that earlier tests dropped close their pipes when collected
    before = open_fds()
    for _ in range(5):
        closed = refpool.Pool(2, context=multiprocessing.get_context("fork"))
        closed.map(square, range(10))
        closed.close()
        closed.join()
        terminated = refpool.Pool(2, context=multiprocessing.get_context("fork"))
        terminated.terminate()
        terminated.join()
    del closed, terminated
    gc.collect()
    assert open_fds() == before


class Holder:
    """Puts a pool in a reference cycle, so only the cyclic collector frees it."""

    def __init__(self, pool: refpool.Pool) -> None:
        self.pool = pool
        self.me = self


def test_a_pool_collected_inside_its_own_thread_is_still_terminated(monkeypatch: pytest.MonkeyPatch) -> None:
    """LIFE-7: the finalizer may run in a pool thread holding the roster's lock (here: starting a worker)."""
    pool = refpool.Pool(2, context=multiprocessing.get_context("fork"))
    core = pool._live_core()
    real_start = type(core._transport).start_worker

    def start_and_collect(self: object, worker_id: int) -> object:
        gc.collect()  # as an allocation might, with the roster's lock held
        return real_start(self, worker_id)  # type: ignore[arg-type]

    monkeypatch.setattr(type(core._transport), "start_worker", start_and_collect)
    victim = core.roster.handles()[0]
    gc.disable()  # so the collection happens where the test puts it
    Holder(pool)
    del pool
    try:
        with pytest.warns(ResourceWarning, match="unclosed running"):
            victim.kill()  # the worker handler replaces it, and collects the pool meanwhile
            assert core._terminated.wait(WAIT)
    finally:
        gc.enable()
    core.join()
    assert not any(t.is_alive() for t in core._threads)
    assert multiprocessing.active_children() == []


def test_imap_ends_cleanly_when_terminate_runs_in_the_task_handler() -> None:
    """Checks SHUT-5."""
    pool = refpool.Pool(2, context=multiprocessing.get_context("fork"))
    # A lambda cannot be pickled: its error callback runs in the task handler.
    pool.apply_async(lambda: 1, error_callback=lambda _: pool.terminate())
    it = pool.imap(square, [])
    with pytest.raises(refpool.PoolTerminatedError):
        it.next(WAIT)  # type: ignore[attr-defined]
    with pytest.raises(StopIteration):
        it.next(WAIT)  # type: ignore[attr-defined]
    pool.join()


def test_join_waits_for_a_terminate_running_in_another_thread(make_pool: MakePool) -> None:
    """Checks SHUT-4."""
    pool = make_pool(2)
    jobs = [pool.apply_async(sleep_for, (0.01,)) for _ in range(10)]
    stopper = threading.Thread(target=pool.terminate)
    stopper.start()
    while pool._state is refpool.PoolState.RUN:
        time.sleep(0.001)  # the state changes first thing in terminate(); nothing else to wait on
    pool.join()
    assert all(job.ready() for job in jobs)  # every job settled: nothing is left pending
    stopper.join(WAIT)


def test_a_thread_worker_killed_just_before_it_sleeps_does_not_sleep() -> None:
    """Checks SHUT-4 for thread workers: terminate() sets the worker's `killed` flag and rings its
    doorbell. If both happen after the worker last looked at the flag but before it waits, the
    wait drops the ring with the stale ones; it must then see the flag and return, or join()
    waits for ever (found by the fuzzer: 4 hangs in 200 terminated ThreadPools)."""
    inbox = ThreadInbox()
    killed = threading.Event()
    killed.set()  # the kill: flag first, then the ring, both before the worker's wait
    inbox.ring()
    worker = threading.Thread(target=inbox.wait, args=(killed.is_set,), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "the killed worker's wait dropped the kill's ring and slept"
