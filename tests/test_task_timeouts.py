"""Per-task timeouts (spec TIME-1 to TIME-4)."""

from __future__ import annotations

import functools
import math
import multiprocessing
import pathlib
import time

import pytest

import refpool
from refpool import roster as roster_module
from refpool.observer import Observation, TaskTimedOut

from pool_helpers import (
    MakePool,
    append_line,
    identity,
    lines_of,
    pid_of_worker,
    sleep_for,
    square,
    wait_for_file,
)

WAIT = 20  # seconds: a bound on every blocking call
LIMIT = 0.5  # seconds a timed task may run in these tests


def test_a_task_past_its_timeout_fails_and_its_worker_is_replaced(make_process_pool: MakePool) -> None:
    """TIME-2: TaskTimeoutError naming the job, the task and the limit; the next task runs on
    a fresh worker; the pool stays in RUN."""
    pool = make_process_pool(1)
    first_pid = pool.apply(pid_of_worker)
    timed = pool.apply_async(sleep_for, (60,), timeout=LIMIT)
    with pytest.raises(refpool.TaskTimeoutError) as raised:
        timed.get(timeout=WAIT)
    error = raised.value
    assert (error.job_id, error.position, error.timeout, error.pid) == (timed.job_id, 0, LIMIT, first_pid)
    assert f"task 0 of job {timed.job_id}" in str(error) and "0.5 s" in str(error)
    assert isinstance(error, TimeoutError) and not isinstance(error, multiprocessing.TimeoutError)
    assert pool.apply(pid_of_worker) != first_pid
    assert pool._state is refpool.PoolState.RUN


def test_tasks_behind_a_timed_out_task_run_elsewhere_exactly_once(
    make_process_pool: MakePool, tmp_path: pathlib.Path
) -> None:
    """TIME-2, LOST-3: the tasks the stopped worker held behind it are taken back, and run
    once each, on its replacement."""
    pool = make_process_pool(1)
    log = str(tmp_path / "ran")
    timed = pool.apply_async(sleep_for, (60,), timeout=LIMIT)
    behind = pool.map_async(functools.partial(append_line, log), range(6), chunksize=1)
    with pytest.raises(refpool.TaskTimeoutError):
        timed.get(timeout=WAIT)
    assert behind.get(timeout=WAIT) == list(range(6))
    assert sorted(lines_of(log)) == [str(x) for x in range(6)]


def test_the_clock_starts_when_the_task_starts(make_process_pool: MakePool, tmp_path: pathlib.Path) -> None:
    """TIME-1: a timed task that waits behind another longer than its limit, then runs
    quickly, succeeds: waiting does not count."""
    pool = make_process_pool(1)
    gate = str(tmp_path / "gate")
    blocker = pool.apply_async(wait_for_file, (gate,))
    timed = pool.apply_async(square, (3,), timeout=LIMIT)
    time.sleep(3 * LIMIT)  # the subject of the test: time passes while the task waits
    pathlib.Path(gate).touch()
    assert blocker.get(timeout=WAIT) == gate
    assert timed.get(timeout=WAIT) == 9


def test_map_fails_as_a_whole_and_imap_goes_on(make_process_pool: MakePool) -> None:
    """TIME-2 with JOB-6: one chunk past its time fails a map; an imap yields the error in
    that task's place and then the results after it."""
    pool = make_process_pool(2)
    with pytest.raises(refpool.TaskTimeoutError):
        pool.map_async(sleep_for, [0, 60, 0], chunksize=1, timeout=LIMIT).get(timeout=WAIT)
    results = pool.imap(sleep_for, [0, 60, 0], timeout=LIMIT)
    assert results.next(timeout=WAIT) == 0
    with pytest.raises(refpool.TaskTimeoutError) as raised:
        results.next(timeout=WAIT)
    assert raised.value.position == 1
    assert results.next(timeout=WAIT) == 0
    timed_star = pool.starmap_async(sleep_for, [(60,)], timeout=LIMIT)
    with pytest.raises(refpool.TaskTimeoutError):
        timed_star.get(timeout=WAIT)
    assert sorted(pool.imap_unordered(square, range(3), timeout=WAIT)) == [0, 1, 4]


def test_get_timeout_only_stops_waiting(make_process_pool: MakePool, tmp_path: pathlib.Path) -> None:
    """TIME-3: get(timeout) raises multiprocessing.TimeoutError and the task goes on; a task's
    TaskTimeoutError is not a multiprocessing.TimeoutError."""
    pool = make_process_pool(1)
    gate = str(tmp_path / "gate")
    waiting = pool.apply_async(wait_for_file, (gate,), timeout=WAIT)
    with pytest.raises(multiprocessing.TimeoutError) as raised:
        waiting.get(timeout=0.05)
    assert not isinstance(raised.value, refpool.TaskTimeoutError)
    pathlib.Path(gate).touch()
    assert waiting.get(timeout=WAIT) == gate
    assert not issubclass(refpool.TaskTimeoutError, multiprocessing.TimeoutError)


@pytest.mark.parametrize(
    ("timeout", "error"),
    [("1", TypeError), (True, TypeError), (0, ValueError), (-1, ValueError), (math.nan, ValueError)],
)
def test_a_bad_timeout_is_refused_before_anything_is_queued(
    make_process_pool: MakePool, timeout: object, error: type[Exception]
) -> None:
    """TIME-1: the value is named, and no job is made."""
    pool = make_process_pool(1)
    submits = [
        lambda: pool.apply_async(square, (1,), timeout=timeout),
        lambda: pool.map_async(square, [1], timeout=timeout),
        lambda: pool.starmap_async(square, [(1,)], timeout=timeout),
        lambda: pool.imap(square, [1], timeout=timeout),
        lambda: pool.imap_unordered(square, [1], timeout=timeout),
    ]
    for submit in submits:
        with pytest.raises(error, match="timeout") as raised:
            submit()
        assert repr(timeout) in str(raised.value)
    assert len(pool._core.cache) == 0


def test_an_infinite_timeout_is_no_limit(make_process_pool: MakePool) -> None:
    """TIME-1: math.inf is taken as None."""
    pool = make_process_pool(1)
    assert pool.apply_async(square, (4,), timeout=math.inf).get(timeout=WAIT) == 16
    assert pool._core.timekeeper.thread is None  # no timed task, no timekeeper


def test_a_thread_pool_refuses_a_timeout() -> None:
    """TIME-4: a thread cannot be stopped, so a ThreadPool says so at submission."""
    with refpool.ThreadPool(1) as pool:
        for submit in (pool.apply_async, pool.map_async, pool.starmap_async, pool.imap, pool.imap_unordered):
            with pytest.raises(ValueError, match="ThreadPool cannot enforce timeout=2"):
                submit(identity, [(1,)], timeout=2)
        assert pool.apply_async(square, (2,), timeout=None).get(timeout=WAIT) == 4


def timed_out_and_reran(
    pool_kind_context: str, tmp_path: pathlib.Path
) -> tuple[list[Observation], list[str]]:
    """Run a timed task that records each of its starts and then sleeps past its limit."""
    trace: list[Observation] = []
    log = str(tmp_path / "starts")
    with refpool.Pool(
        1, context=multiprocessing.get_context(pool_kind_context), observer=trace.append
    ) as pool:
        timed = pool.apply_async(append_then_sleep, (log,), timeout=LIMIT)
        with pytest.raises(refpool.TaskTimeoutError):
            timed.get(timeout=WAIT)
        pool.apply(square, (1,))  # the replacement is up and has run a task
    return trace, lines_of(log)


def append_then_sleep(log: str) -> None:
    append_line(log, "start")
    time.sleep(60)


def test_a_timed_out_task_runs_once(tmp_path: pathlib.Path) -> None:
    """TIME-2: the timed-out task is never run again, and the trace says why its worker went."""
    trace, starts = timed_out_and_reran("fork", tmp_path)
    assert starts == ["start"]
    assert [type(o) for o in trace].count(TaskTimedOut) == 1


def test_requeueing_the_running_task_is_caught(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    """The check above catches a seeded bug: at expiry the running task goes back to `ready`
    too, and runs again on the replacement (the model's timeout_requeues_running)."""
    original = roster_module.Roster._stop_for_timeout
    requeued: list[object] = []

    def requeue_it_too(
        self: roster_module.Roster,
        record: roster_module.WorkerRecord,
        key: roster_module.TaskKey,
        timeout: float,
    ) -> None:
        held = record.held[key]
        original(self, record, key, timeout)
        if not requeued:  # once: the second run times out too, and then the pool goes on
            requeued.append(key)
            self.ready.appendleft(roster_module.ReadyTask(key, held.encoded, held.size, held.timeout))

    monkeypatch.setattr(roster_module.Roster, "_stop_for_timeout", requeue_it_too)
    _, starts = timed_out_and_reran("fork", tmp_path)
    assert starts == ["start", "start"]
