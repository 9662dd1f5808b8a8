"""Soak: pools made and ended over and over leave nothing behind (SHUT-6, SHUT-7, SHUT-8).

Each run measures, before and after its cycles, the open file descriptors, the
threads, the multiprocessing children and the children the kernel lists for
this process, and checks that none has grown. The baseline is taken after one
warm-up cycle: the first pool of a kind may start what lives as long as the
test process (the forkserver, the resource tracker) and that is not a leak.
The collector is not run after the cycles: SHUT-6 asks that pipes be released
by join(), not by a later garbage collection. Every cycle also checks that the
pool, joined and still held by the caller, holds no file descriptor (SHUT-7).

Short runs are part of the default test run; `REFPOOL_LONG=1` adds the long
runs of issue 10 (1,000 close+join and 1,000 terminate cycles, 300 killed
workers per kind). Each run prints one line of figures (pytest -s shows them).
"""

from __future__ import annotations

import gc
import os
import signal
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

import refpool

from conftest import ALL_KINDS, PROCESS_KINDS
from pool_helpers import MakePool, sleep_for, square
from reliability.campaign_helpers import (
    SIZES,
    WAIT,
    Announcements,
    Payload,
    Snapshot,
    announce_and_sleep,
    collector,
    make_pool,
    next_payload,
    open_fds,
    size_of,
)

# Cycles of a short run (the default test run) per kind: a spawned pool takes
# ~100 ms to start on this 2-core machine, a forked one a few ms.
SHORT_CYCLES = {"fork": 12, "forkserver": 8, "spawn": 3, "thread": 25}
LONG_CYCLES = 1000
LONG_KILLED_CYCLES = 300


class Cycles:
    """Runs cycles and keeps the worst file-descriptor count of a joined pool still held."""

    def __init__(self, baseline_fds: int) -> None:
        self.baseline_fds = baseline_fds
        self.worst_held = 0  # fds beyond the baseline while the caller held a joined pool

    def joined(self, pool: refpool.Pool) -> None:
        """Right after join(), with `pool` still referenced by the caller (SHUT-7)."""
        held = open_fds() - self.baseline_fds
        self.worst_held = max(self.worst_held, held)
        del pool


@contextmanager
def ended_on_failure(pool: refpool.Pool) -> Iterator[refpool.Pool]:
    """A cycle that fails leaves no pool running behind it, to spoil the next tests' figures."""
    try:
        yield pool
    except BaseException:
        pool.terminate()
        pool.join()
        raise


def close_join_cycle(kind: str, cycles: Cycles, extra: object) -> None:
    with ended_on_failure(make_pool(kind)) as pool:
        _close_join(pool)
    cycles.joined(pool)


def _close_join(pool: refpool.Pool) -> None:
    assert pool.map(square, range(20)) == [x * x for x in range(20)]
    pool.close()
    pool.join()


def terminate_mid_map_cycle(kind: str, cycles: Cycles, extra: object) -> None:
    with ended_on_failure(make_pool(kind)) as pool:
        assert pool.apply(square, (3,)) == 9  # the workers are up and running tasks
        # 40 tasks of 5 ms on 2 workers: terminate() comes long before the map ends.
        job = pool.map_async(sleep_for, [0.005] * 40, chunksize=1)
        pool.terminate()
        with pytest.raises(refpool.PoolTerminatedError):
            job.get(WAIT)
        pool.join()
    cycles.joined(pool)


def killed_worker_cycle(kind: str, cycles: Cycles, extra: object) -> None:
    assert isinstance(extra, Announcements)
    with ended_on_failure(make_pool(kind, 1)) as pool:
        job = pool.apply_async(announce_and_sleep, (extra.path,))
        victim = extra.next_pid()  # the worker is inside the task
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(refpool.WorkerLostError) as lost:
            job.get(WAIT)
        assert lost.value.pid == victim
        pool.close()
        pool.join()
    cycles.joined(pool)


Cycle = Callable[[str, Cycles, object], None]


def soak(kind: str, name: str, cycle: Cycle, count: int, gc_on: bool, extra: object = None) -> None:
    """Warm up, measure, run `count` cycles, measure again; print the figures; check."""
    cycle(kind, Cycles(open_fds()), extra)  # warm-up: the forkserver, the resource tracker
    gc.collect()  # what earlier tests dropped is not this run's
    before = Snapshot.take()
    cycles = Cycles(before.fds)
    started = time.monotonic()
    with collector(gc_on):
        for _ in range(count):
            cycle(kind, cycles, extra)
        after = Snapshot.take()
    print(
        f"\nsoak {kind} {name} gc={'on' if gc_on else 'off'}: {count} cycles in "
        f"{time.monotonic() - started:.1f} s, {before.describe(after)}, "
        f"worst joined pool held {cycles.worst_held} fds"
    )
    assert after.threads <= before.threads, "threads left behind (SHUT-6)"
    assert after.children <= before.children, "worker processes left behind (SHUT-6)"
    assert after.proc_children <= before.proc_children, "child processes left behind (SHUT-6)"
    assert after.fds <= before.fds, "file descriptors left behind (SHUT-6)"
    assert cycles.worst_held <= 0, "a joined pool still held file descriptors (SHUT-7)"


@pytest.mark.parametrize("gc_on", [True, False], ids=["gc-on", "gc-off"])
@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("size", SIZES)
def test_create_use_close_join_cycles_leave_nothing(size: str, kind: str, gc_on: bool) -> None:
    """Checks SHUT-6, SHUT-7."""
    count = size_of(size, SHORT_CYCLES[kind], LONG_CYCLES)
    soak(kind, "close+join", close_join_cycle, count, gc_on)


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("size", SIZES)
def test_terminate_mid_map_cycles_leave_nothing(size: str, kind: str) -> None:
    """Checks SHUT-5, SHUT-6, SHUT-7."""
    count = size_of(size, SHORT_CYCLES[kind], LONG_CYCLES)
    soak(kind, "terminate-mid-map", terminate_mid_map_cycle, count, gc_on=True)


@pytest.mark.parametrize("kind", PROCESS_KINDS)
@pytest.mark.parametrize("size", SIZES)
def test_killed_worker_cycles_leave_nothing(size: str, kind: str, tmp_path: os.PathLike[str]) -> None:
    """Checks LOST-1, SHUT-6, SHUT-7."""
    count = size_of(size, SHORT_CYCLES[kind], LONG_KILLED_CYCLES)
    announcements = Announcements(os.path.join(tmp_path, "started"))
    try:
        soak(kind, "killed-worker", killed_worker_cycle, count, gc_on=True, extra=announcements)
    finally:
        announcements.close()


def test_nothing_of_a_finished_map_stays_referenced(make_pool: MakePool) -> None:
    """Checks SHUT-8 (stdlib: bpo-29861): once map() has returned and the caller has dropped its
    inputs and results, the pool, still running, holds none of them."""
    pool = make_pool(2)
    inputs = [Payload(i) for i in range(40)]
    results = pool.map(next_payload, inputs, chunksize=3)
    assert results == [Payload(i + 1) for i in range(40)]
    refs = [weakref.ref(p) for p in inputs + results]
    del inputs, results
    gc.collect()
    alive = [ref() for ref in refs if ref() is not None]
    assert pool._state is refpool.PoolState.RUN
    assert alive == [], f"{len(alive)} of {len(refs)} inputs and results are still referenced"


def test_nothing_of_a_finished_apply_stays_referenced(make_pool: MakePool) -> None:
    """Checks SHUT-8: the same for apply_async, its argument and its result."""
    pool = make_pool(1)
    argument = Payload(1)
    result = pool.apply_async(next_payload, (argument,)).get(WAIT)
    refs = [weakref.ref(argument), weakref.ref(result)]
    del argument, result
    gc.collect()
    assert [ref() for ref in refs] == [None, None]
    assert pool.apply(square, (2,)) == 4  # the pool is alive
