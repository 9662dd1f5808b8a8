"""Chaos: tasks run while a thread SIGKILLs random workers (JOB-1, LOST-1, LOST-3, WORK-2, SHUT-6).

Every task ends exactly once, with its own result or with WorkerLostError,
and no call waits longer than its timeout. Each task's outcome is
attributable: apply_async gives one outcome per task; imap_unordered's tasks
return their input, so results and losses are counted against what was
submitted, with no duplicates; a map fails as a whole if one of its chunks was
lost (JOB-6), so maps are counted whole. A worker's death fails at most the one
task it was running (LOST-3): the losses never outnumber the kills, and every
loss names a SIGKILL. The last maps are submitted and the pool closed while the
killer still runs, so workers are replaced in CLOSE until the work is done
(WORK-2). After join() nothing is left (SHUT-6; the soak checks file
descriptors without the collector's help, this only after a collection).

Short runs are in the default test run; `REFPOOL_LONG=1` adds 20,000 tasks per
start method. Each run prints one line of figures (pytest -s shows them).
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

import refpool

from conftest import PROCESS_KINDS
from reliability.campaign_helpers import (
    SIZES,
    WAIT,
    Killer,
    Snapshot,
    echo,
    echo_after_work,
    make_pool,
    proc_children,
    size_of,
)

SHORT_TASKS = {"fork": 1500, "forkserver": 600, "spawn": 600}
LONG_TASKS = 20_000
MAXTASKS = 25  # small: workers exit and are replaced all the time, besides the kills
MAP_SIZE, MAP_CHUNK = 100, 5
# Seconds between kills: a spawned or forkserver worker takes 100-200 ms to
# start here (it imports refpool.worker; measured by the churn test below), and
# killing faster than workers can start would only measure start-up.
KILL_INTERVAL = {"fork": 0.1, "forkserver": 0.3, "spawn": 0.4}


@dataclass
class Tally:
    """What came back, per API."""

    submitted: int = 0
    results: list[int] = field(default_factory=list)
    lost: list[refpool.WorkerLostError] = field(default_factory=list)

    def settle(self, outcome: int | refpool.WorkerLostError) -> None:
        if isinstance(outcome, refpool.WorkerLostError):
            self.lost.append(outcome)
        else:
            self.results.append(outcome)

    def check_exactly_once(self, what: str) -> None:
        assert len(set(self.results)) == len(self.results), f"{what}: a result came twice"
        assert set(self.results) <= set(range(self.submitted)), f"{what}: a result nobody asked for"
        assert len(self.results) + len(self.lost) == self.submitted, (
            f"{what}: {len(self.results)} results + {len(self.lost)} lost != {self.submitted} submitted"
        )


def outcome_of(result: refpool.ApplyResult) -> int | refpool.WorkerLostError:
    try:
        value: int = result.get(WAIT)
        return value
    except refpool.WorkerLostError as lost:
        return lost


def run_apply_async(pool: refpool.Pool, count: int) -> Tally:
    tally = Tally(count)
    pending = [pool.apply_async(echo_after_work, (i,)) for i in range(count)]
    for i, result in enumerate(pending):
        outcome = outcome_of(result)
        assert isinstance(outcome, refpool.WorkerLostError) or outcome == i, "apply_async: wrong result"
        tally.settle(outcome)
    tally.check_exactly_once("apply_async")
    return tally


def run_imap_unordered(pool: refpool.Pool, count: int, task: Callable[[int], int] = echo_after_work) -> Tally:
    tally = Tally(count)
    iterator = pool.imap_unordered(task, range(count))
    while True:
        try:
            tally.settle(iterator.next(WAIT))  # type: ignore[attr-defined]
        except refpool.WorkerLostError as lost:
            tally.settle(lost)
        except StopIteration:
            break
    tally.check_exactly_once("imap_unordered")
    return tally


def run_maps_then_close(pool: refpool.Pool, count: int) -> tuple[int, int]:
    """Maps of MAP_SIZE items, all submitted, then close(); returns (maps, maps lost)."""
    starts = range(0, count, MAP_SIZE)
    jobs = [
        (start, pool.map_async(echo_after_work, range(start, min(start + MAP_SIZE, count)), MAP_CHUNK))
        for start in starts
    ]
    pool.close()  # the killer goes on: workers are replaced in CLOSE until the work is done (WORK-2)
    lost = 0
    for start, job in jobs:
        try:
            assert job.get(WAIT) == list(range(start, min(start + MAP_SIZE, count)))
        except refpool.WorkerLostError as error:
            assert error.exitcode == -signal.SIGKILL
            lost += 1
    return len(jobs), lost


def chaos(kind: str, tasks: int) -> None:
    warm_up = make_pool(kind)
    warm_up.map(echo_after_work, range(4))
    warm_up.close()
    warm_up.join()
    del warm_up
    gc.collect()
    before = Snapshot.take()
    third = tasks // 3
    started = time.monotonic()
    pool = make_pool(kind, 3, maxtasksperchild=MAXTASKS)
    try:
        with Killer(pool, KILL_INTERVAL[kind], seed=tasks) as killer:
            applied = run_apply_async(pool, third)
            unordered = run_imap_unordered(pool, third)
            maps, maps_lost = run_maps_then_close(pool, tasks - 2 * third)
        pool.join()
    except BaseException:
        pool.terminate()  # leave no pool behind to spoil the next runs' figures
        pool.join()
        raise
    elapsed = time.monotonic() - started
    lost = applied.lost + unordered.lost
    print(
        f"\nchaos {kind}: {tasks} tasks in {elapsed:.1f} s, maxtasksperchild {MAXTASKS}, "
        f"{killer.kills} kills; lost: {len(applied.lost)} of {third} apply_async, "
        f"{len(unordered.lost)} of {third} imap_unordered, {maps_lost} of {maps} maps "
        f"({tasks - 2 * third} items, chunks of {MAP_CHUNK}); "
        f"{len(lost) + maps_lost} tasks lost in all"
    )
    assert all(error.exitcode == -signal.SIGKILL for error in lost), "a loss that no kill explains"
    assert len(lost) + maps_lost <= killer.kills, "a death failed more than one task (LOST-3)"
    del pool
    gc.collect()
    after = Snapshot.take()
    assert multiprocessing.active_children() == [], "workers left behind (SHUT-6)"
    assert after.threads <= before.threads, f"threads left behind (SHUT-6): {before.describe(after)}"
    assert after.fds <= before.fds, f"file descriptors left behind (SHUT-6): {before.describe(after)}"
    assert len(proc_children()) <= before.proc_children, "child processes left behind (SHUT-6)"


@pytest.mark.parametrize("kind", PROCESS_KINDS)
@pytest.mark.parametrize("size", SIZES)
def test_every_task_ends_once_while_workers_are_killed(size: str, kind: str) -> None:
    """Checks JOB-1, JOB-6, LOST-1, LOST-3, WORK-2, SHUT-6."""
    chaos(kind, size_of(size, SHORT_TASKS[kind], LONG_TASKS))


@pytest.mark.parametrize("kind", PROCESS_KINDS)
def test_workers_that_exit_by_their_quota_lose_nothing(kind: str) -> None:
    """Checks JOB-1, WORK-3, WORK-4: the control of the chaos runs, with no kill. Workers of
    maxtasksperchild=1 exit after each task; a worker that exits by its quota holds no task,
    so none is lost."""
    tasks = {"fork": 300, "forkserver": 40, "spawn": 12}[kind]
    pool = make_pool(kind, 2, maxtasksperchild=1)
    try:
        started = time.monotonic()
        assert pool.map_async(echo, range(tasks), chunksize=1).get(WAIT * 4) == list(range(tasks))
        unordered = run_imap_unordered(pool, tasks // 2, echo)
        print(
            f"\nchurn {kind}: maxtasksperchild 1, {tasks} map tasks and {tasks // 2} imap_unordered tasks "
            f"in {time.monotonic() - started:.1f} s, {len(unordered.lost)} lost"
        )
        assert unordered.lost == []
        pool.close()
        pool.join()
    except BaseException:
        pool.terminate()
        pool.join()
        raise
