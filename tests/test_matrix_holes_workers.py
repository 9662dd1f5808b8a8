"""Checks the clause-by-mutant matrix found missing (tests/matrix/mutants_workers.py): each
fails with a seeded mutant that every other check let through."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_buffered import CountingInput

import refpool
from refpool.messages import SHUTDOWN

from pool_helpers import failing_initializer, square, wait_for_file
from test_roster import filled, held, offer, sent, settle, task

WAIT = 20  # seconds: a bound on every blocking call


def test_no_task_reaches_a_worker_after_its_sentinel() -> None:
    """SHUT-1: a task that comes back to `ready` once the pool is closing (here: from a worker
    whose initializer raised before it started its only task) waits for a new worker; it is
    not handed to the idle worker that has its sentinel already (that one would exit first)."""
    roster = filled(processes=2, depth=2)
    offer(roster, task(0, 0), task(0, 1))  # one each: worker 1 runs (0, 0), worker 2 (0, 1)
    settle(roster, 1, (0, 0))
    roster.begin_closing().send()
    assert sent(roster, 1)[-1] is SHUTDOWN and held(roster, 2) == [(0, 1)]
    first = roster.workers[1]
    _, failed, handout = roster.reap_uninitialized(2, 1)
    handout.send()
    assert not failed
    assert not first.held and sent(roster, 1)[-1] is SHUTDOWN
    assert [t.key for t in roster.ready] == [(0, 1)]
    with roster.cond:
        assert roster.missing() == 1  # the worker handler starts one for it


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_worker_seen_gone_leaves_no_descriptor_while_the_pool_lives() -> None:
    """SHUT-7: the pipes and claim word of each worker that exits are closed as it is seen
    gone, not when the pool is joined: replacing 20 workers leaves as many descriptors open.
    (Fork only: what is checked is the parent's bookkeeping, and forks start fastest.)"""
    with refpool.Pool(1, maxtasksperchild=1, context=multiprocessing.get_context("fork")) as pool:
        assert pool.map(square, range(2), chunksize=1) == [0, 1]
        before = open_fds()
        assert pool.map_async(square, range(20), chunksize=1).get(WAIT) == [x * x for x in range(20)]
        # A replacement may be starting as the last result comes: a few descriptors, not 3 per worker.
        assert open_fds() - before < 10
    pool.join()


def test_a_buffered_next_that_times_out_draws_nothing(tmp_path: Path) -> None:
    """BUF-1: a slot is freed when the caller takes a result, never while it waits: a
    `next(timeout)` that times out has taken nothing, so nothing more is drawn. (The checks
    that count draws after each result taken cannot tell a draw made before the take.)"""
    gate = tmp_path / "gate"
    source = CountingInput()
    with refpool.ThreadPool(1) as pool:  # the feed is the same for every pool; threads start fastest
        try:
            results = pool.imap(wait_for_file, (str(gate) for _ in source), buffersize=1)
            for _ in range(3):
                with pytest.raises(multiprocessing.TimeoutError):
                    results.next(timeout=0.05)
            assert source.drawn == 1
        finally:
            gate.touch()  # the running task ends: a thread cannot be stopped
        assert results.next(timeout=WAIT) == str(gate)
        assert source.drawn == 2


def test_tasks_fail_at_the_third_initializer_failure_in_a_row() -> None:
    """LOST-4: from the third failure in a row, not later. One worker, so the failures come one
    at a time and the task is held by each in turn: the third fails it."""
    with refpool.ThreadPool(1, initializer=failing_initializer) as pool:
        job = pool.apply_async(square, (3,))
        with pytest.raises(refpool.InitializerError) as raised:
            job.get(timeout=WAIT)
    assert raised.value.failures == 3


def slow_input(length: int) -> Iterator[int]:
    """A generator that takes a moment per item, as one reading a file or a socket does."""
    for item in range(length):
        time.sleep(0.001)
        yield item


def test_several_threads_consume_one_buffered_imap() -> None:
    """SHUT-11: threads that share a buffered imap draw its input one at a time; each gets
    results, together every result once (a generator read by two threads at once raises
    "generator already executing")."""
    taken: list[int] = []
    errors: list[BaseException] = []
    with refpool.ThreadPool(2) as pool:
        results = pool.imap(square, slow_input(200), buffersize=4)

        def consume() -> None:
            try:
                while True:
                    taken.append(results.next(timeout=WAIT))
            except StopIteration:
                pass
            except BaseException as error:
                errors.append(error)

        consumers = [threading.Thread(target=consume) for _ in range(3)]
        for consumer in consumers:
            consumer.start()
        for consumer in consumers:
            consumer.join(WAIT * 2)
    assert not errors, errors[0]
    assert sorted(taken) == [x * x for x in range(200)]


def announce_then_run(started: threading.Event, seconds: float) -> None:
    started.set()
    time.sleep(seconds)  # a task still running when terminate() comes


def test_join_after_terminate_waits_for_the_running_thread_workers() -> None:
    """SHUT-6: a thread cannot be killed, so terminate() lets a running task end; join() then
    waits for it: once join() returns, no worker thread of the pool is alive."""
    started = threading.Event()
    pool = refpool.ThreadPool(1)
    pool.apply_async(announce_then_run, (started, 0.3))
    assert started.wait(WAIT)
    pool.terminate()
    pool.join()
    assert not any(handle.is_alive() for handle in pool._live_core().roster.handles())
