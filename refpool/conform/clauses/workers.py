"""The checks of the WORK clauses: how many workers, and who runs which task."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from .. import tasks
from ..registry import Broken, PoolFactory, Skip, require, step
from .common import (
    POLL,
    WAIT,
    clause,
    next_of,
    process_pool,
    require_squares,
    running,
    value_of,
)
from .gates import Gate
from .proc import child_processes, have_proc


def _require_workers(expected: int, what: str, children_before: set[int]) -> None:
    """Wait until exactly `expected` live workers, never seeing more."""
    step(what)
    deadline = time.monotonic() + WAIT
    while True:
        live = child_processes() - children_before
        require(len(live) <= expected, f"{what}: {len(live)} live workers, more than {expected}")
        if len(live) == expected:
            return
        if time.monotonic() > deadline:
            raise Broken(f"{what}: {len(live)} live workers after {WAIT:g} s, not {expected}")
        time.sleep(POLL)


NOT_CHILDREN = (
    "the pool's workers are not child processes of the caller (a cluster's, say), so that their number"
    " cannot be counted"
)


def _workers_are_children(pool: Any, children_before: set[int]) -> bool:
    """Whether the processes that run the pool's tasks are this process's new children."""
    pids = value_of(pool.map_async(tasks.pid, range(4), 1), "map_async(pid, range(4), chunksize=1)")
    return bool(set(pids) & (child_processes() - children_before))


@clause("WORK-1", "when a worker exits the pool returns to exactly `processes` live workers")
def work_1(make_pool: PoolFactory) -> None:
    if not have_proc():
        raise Skip("needs /proc to count worker processes")
    children_before = child_processes()
    with running(process_pool(make_pool, 3)) as pool:
        if not _workers_are_children(pool, children_before):
            raise Skip(NOT_CHILDREN)
        _require_workers(3, "a new pool of 3", children_before)
        # The victims are idle workers, taken from /proc: no task runs after a kill, so that
        # this checks the count only (CPython's idle workers hold the task queue's lock, and a
        # worker killed holding it stops the pool: that is LOST's business).
        for round_ in range(3):
            victim = min(child_processes() - children_before)
            step(f"SIGKILL worker {victim}")
            os.kill(victim, signal.SIGKILL)
            step(f"waiting for the pool to reap worker {victim}")
            deadline = time.monotonic() + WAIT
            while victim in child_processes() and time.monotonic() < deadline:
                time.sleep(POLL)  # a process's end has no event to wait on here
            require(victim not in child_processes(), f"the killed worker {victim} was not reaped in {WAIT} s")
            _require_workers(3, f"after worker {victim} was killed (round {round_ + 1})", children_before)


@clause("WORK-4", "a worker exits after maxtasksperchild tasks and is replaced")
def work_4(make_pool: PoolFactory) -> None:
    children_before = child_processes() if have_proc() else set()
    with running(process_pool(make_pool, 2, maxtasksperchild=1)) as pool:
        # Counted only when the workers the constructor started are this process's children
        # (NOT_CHILDREN): a worker that has run its one task may be gone before it can be asked.
        counted = have_proc() and bool(child_processes() - children_before)
        pids = value_of(pool.map_async(tasks.pid, range(6), 1), "map_async(pid, range(6), chunksize=1)")
        require(len(set(pids)) == 6, f"with maxtasksperchild=1, 6 tasks ran in {len(set(pids))} workers")
        if counted:
            _require_workers(2, "after 6 tasks with maxtasksperchild=1", children_before)
        got = value_of(pool.apply_async(tasks.square, (9,)), "apply_async after the workers were replaced")
        require(got == 81, f"square(9) returned {got!r}")


@clause("WORK-5", "no task waits behind a running task while a worker is idle")
def work_5(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool, Gate() as gate:
        long = pool.apply_async(tasks.hold, (gate.task("long"),))
        gate.wait_for(["started-long"], "wait for the long task to start")
        quick = [pool.apply_async(tasks.square, (i,)) for i in range(10)]
        require_squares(
            quick,
            "quick job {i} while one worker runs a long task",
            "quick job {i} waited behind a running task while a worker was idle",
        )
        gate.open()
        value_of(long, "the long task")
        with Gate() as second:
            specs = [second.task("m0")] + [second.task(f"m{i}", wait=False) for i in range(1, 6)]
            results = pool.imap(tasks.hold, specs)
            second.wait_for(
                [f"finished-m{i}" for i in range(1, 6)],
                "imap items behind a held one, while a worker is idle",
            )
            second.open()
            for _ in range(6):
                next_of(results, "imap after the gate opened")
