"""The checks of the SHUT clauses: shutting down, and what a joined pool leaves behind."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import multiprocessing.pool
import os
import signal
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

from .. import tasks
from ..registry import PoolFactory, Skip, require, step
from .common import (
    POLL,
    WAIT,
    clause,
    error_of,
    new_threads,
    next_value,
    running,
    uses_processes,
    value_of,
    within,
)
from .gates import Gate
from .proc import child_processes, have_proc, open_fds


@clause("SHUT-4", "close()+join() and terminate()+join() return")
def shut_4(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        within("close()", pool.close)
        within("join() after close()", pool.join)
    with running(make_pool(2)) as pool:
        jobs = [pool.apply_async(tasks.square, (i,)) for i in range(20)]
        pending = pool.map_async(tasks.square, range(50), 1)
        within("close() with jobs pending", pool.close)
        within("join() after close() with jobs pending", pool.join)
        unsettled = sum(not job.ready() for job in [*jobs, pending])
        require(not unsettled, f"join() returned before {unsettled} of the 21 jobs submitted settled")
    with running(make_pool(2)) as pool:
        value_of(pool.apply_async(tasks.square, (2,)), "apply_async(square, (2,))")
        within("terminate()", pool.terminate)
        within("join() after terminate()", pool.join)
    with running(make_pool(2)) as pool, Gate() as gate:
        pool.apply_async(tasks.hold, (gate.task("long"),))
        gate.wait_for(["started-long"], "wait for a long task to start")
        # A thread cannot be stopped mid-task: let the task end soon after terminate() begins.
        threading.Timer(1.0, gate.open).start()
        within("terminate() with a task running", pool.terminate)
        within("join() after terminate() with a task running", pool.join)


@clause("SHUT-5", "terminate() fails every unsettled job", extension=True)
def shut_5(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool, Gate() as gate:
        held = [pool.apply_async(tasks.hold, (gate.task(name),)) for name in ("a", "b")]
        gate.wait_for(["started-a", "started-b"], "wait for both workers to hold a task")
        queued = pool.apply_async(tasks.square, (3,))
        mapped = pool.map_async(tasks.square, range(10))
        # Threads stop only after their task: let the tasks end soon after terminate() begins.
        threading.Timer(1.0, gate.open).start()
        terminating = threading.Thread(target=pool.terminate, name="conform: terminate", daemon=True)
        step("terminate() with two tasks running and two jobs queued")
        terminating.start()
        for what, job in (
            ("a queued apply_async", queued),
            ("a queued map_async", mapped),
            ("a running job", held[0]),
        ):
            error = error_of(
                job,
                f"{what} after terminate()",
                f"terminate() left {what} unsettled: get() timed out after {WAIT:g} s",
            )
            require(
                not isinstance(error, multiprocessing.TimeoutError),
                f"{what} after terminate() raised TimeoutError",
            )
        terminating.join(WAIT)
        require(not terminating.is_alive(), f"terminate() did not return within {WAIT:g} s")


@clause("SHUT-6", "a joined pool leaves no worker process, thread or file descriptor behind")
def shut_6(make_pool: PoolFactory) -> None:
    if not have_proc():
        raise Skip("needs /proc to see child processes and file descriptors")
    warm_up(make_pool)
    # The collector stays off: a pool whose descriptors only a collection of
    # reference cycles closes holds them for as long as the program makes no
    # garbage, or forever with gc.disable(); a program that makes pools in a
    # loop then runs out of descriptors.
    with collector_off():
        # A killed worker is tried under SHUT-7 only: in a pool that breaks LOST-1
        # (CPython's) it may leave the next map waiting, which is not this clause's fault.
        for how in ("close", "terminate"):
            threads_before = set(threading.enumerate())
            children_before = child_processes(zombies=True)
            fds_before = open_fds()
            holder: list[Any] = [make_pool(2)]  # the only reference, dropped after the block
            with running(holder[0]):
                use_then_stop(holder[0], how)
                children = child_processes(zombies=True) - children_before
                require(not children, f"after {how} and join(), child processes {sorted(children)} remain")
                threads = new_threads(threads_before)
                require(not threads, f"after {how} and join(), threads {[t.name for t in threads]} still run")
            holder.clear()
            leaked = open_fds() - fds_before
            require(
                not leaked,
                f"after {how}, join() and dropping the pool, {len(leaked)} fds stay open until the "
                "garbage collector runs (it was off)",
            )


@clause("SHUT-7", "a joined pool holds no file descriptor, even while the caller holds it", extension=True)
def shut_7(make_pool: PoolFactory) -> None:
    if not have_proc():
        raise Skip("needs /proc to see file descriptors")
    warm_up(make_pool)
    with collector_off():
        for how in ("close", "terminate", "close after a worker was killed"):
            fds_before = open_fds()
            with running(make_pool(2)) as pool:
                use_then_stop(pool, how)
                held = open_fds() - fds_before
                require(not held, f"after {how} and join(), the pool still holds {len(held)} fds")


@clause("SHUT-8", "nothing of a finished task stays referenced by the pool")
def shut_8(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        for method in ("map", "imap", "apply_async"):
            items = [tasks.Tracked(i) for i in range(20)]
            inputs = [weakref.ref(item) for item in items]
            if method == "map":
                results = value_of(pool.map_async(tasks.tracked_copy, items), "map_async(tracked_copy, ...)")
            elif method == "imap":
                iterator = pool.imap(tasks.tracked_copy, items)
                results = [next_value(iterator, "imap(tracked_copy, ...)") for _ in items]
                del iterator
            else:
                jobs = [pool.apply_async(tasks.tracked_copy, (item,)) for item in items]
                results = [value_of(job, "apply_async(tracked_copy, (item,))") for job in jobs]
                del jobs
            outputs = [weakref.ref(result) for result in results]
            del items, results
            gc.collect()
            alive = sum(ref() is not None for ref in inputs)
            require(not alive, f"after {method} returned and its inputs were dropped, the pool holds {alive}")
            alive = sum(ref() is not None for ref in outputs)
            require(not alive, f"after {method}'s results were dropped, the pool holds {alive} of them")


def warm_up(make_pool: PoolFactory) -> None:
    """Make and join one pool first: what a start method opens once (a fork server, a
    resource tracker) stays open for the program's life, and is not the pool's. Two workers,
    as the pools that follow: Ray sizes its cluster by the first pool a process makes."""
    with running(make_pool(2)) as pool:
        value_of(pool.apply_async(tasks.square, (2,)), "apply_async(square, (2,)) in a first pool")
        within("close()", pool.close)
        within("join()", pool.join)
    gc.collect()


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    gc.collect()
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def use_then_stop(pool: Any, how: str) -> None:
    """Run tasks on the pool, then close or terminate it as `how` says, and join it."""
    value_of(pool.map_async(tasks.square, range(20)), "map_async(square, range(20))")
    if how == "close after a worker was killed" and uses_processes(pool):
        victim = value_of(pool.apply_async(tasks.pid), "apply_async(pid)")
        step(f"SIGKILL idle worker {victim}, and wait until the pool has reaped it")
        os.kill(victim, signal.SIGKILL)
        # Until then the pool may still hand it a task, which is then lost (LOST-1).
        deadline = time.monotonic() + WAIT
        while victim in child_processes(zombies=True):
            require(time.monotonic() < deadline, f"the pool never reaped its killed worker {victim}")
            time.sleep(POLL)
        value_of(pool.map_async(tasks.square, range(20)), "map_async(square, range(20)) after the kill")
    if how == "terminate":
        within("terminate()", pool.terminate)
    else:
        within("close()", pool.close)
    within(f"join() after {how}", pool.join)
