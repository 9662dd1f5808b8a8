"""Cancelling a job (spec CANCEL-1 to CANCEL-3).

Each scenario holds the only worker in a task that waits for a file, so the
tasks submitted behind it are certainly not started when they are cancelled;
a task records each run in a log file, which any start method can reach.
"""

from __future__ import annotations

import concurrent.futures
import functools
import pathlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import refpool
from refpool import roster as roster_module
from refpool.observer import JobCancelled, Observation, TaskHandedOut

from pool_helpers import (
    MakePool,
    append_line,
    identity,
    lines_of,
    pid_of_worker,
    start_then_wait_for_file,
    wait_for_file,
)

WAIT = 20  # seconds: a bound on every blocking call


def run_behind_a_blocker(
    pool: refpool.Pool, tmp_path: pathlib.Path, submit_and_cancel: Callable[[str], Any]
) -> list[str]:
    """Hold the pool's one worker, submit and cancel behind it, release it; what ran."""
    gate, log = str(tmp_path / "gate"), str(tmp_path / "ran")
    blocker = pool.apply_async(wait_for_file, (gate,))
    submit_and_cancel(log)
    pathlib.Path(gate).touch()
    assert blocker.get(timeout=WAIT) == gate
    assert pool.apply_async(identity, ("after",)).get(timeout=WAIT) == "after"  # all before it is done
    return lines_of(log)


class HandOuts:
    """An observer that lets a test wait until the pool has handed out a job's tasks."""

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self._changed = threading.Condition()

    def __call__(self, observation: Observation) -> None:
        if isinstance(observation, TaskHandedOut):
            with self._changed:
                self._counts[observation.job_id] = self._counts.get(observation.job_id, 0) + 1
                self._changed.notify_all()

    def wait_for(self, job_id: int, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self._counts.get(job_id, 0) >= count, WAIT)


def cancel_a_map(log: str, pool: refpool.Pool, hand_outs: HandOuts | None = None) -> None:
    job = pool.map_async(functools.partial(append_line, log), range(20), chunksize=1)
    if hand_outs is not None:
        # The worker holds the blocker and 7 of them in its inbox; the rest wait in `ready`.
        hand_outs.wait_for(job.job_id, 7)
    assert job.cancel() is True
    with pytest.raises(refpool.JobCancelledError) as raised:
        job.get(timeout=WAIT)
    assert isinstance(raised.value, concurrent.futures.CancelledError)
    assert f"job {job.job_id} was cancelled" in str(raised.value)
    assert job.ready() and not job.successful()


def test_a_cancelled_jobs_unstarted_tasks_never_run(make_pool: MakePool, tmp_path: pathlib.Path) -> None:
    """CANCEL-1: tasks in the worker's inbox and in `ready` are taken away, never run."""
    hand_outs = HandOuts()
    pool = make_pool(1, observer=hand_outs)
    assert run_behind_a_blocker(pool, tmp_path, lambda log: cancel_a_map(log, pool, hand_outs)) == []


def test_a_job_cancelled_before_it_is_handed_out_never_runs(
    make_pool: MakePool, tmp_path: pathlib.Path
) -> None:
    """CANCEL-1: a job cancelled while the task handler still has its tasks never runs either."""
    pool = make_pool(1)
    assert run_behind_a_blocker(pool, tmp_path, lambda log: cancel_a_map(log, pool)) == []


def test_apply_async_and_imap_cancel_too(make_pool: MakePool, tmp_path: pathlib.Path) -> None:
    """CANCEL-1 for apply_async, and for imap, whose input is read no further."""
    pool = make_pool(1)
    drawn: list[int] = []

    def endless() -> Iterator[int]:
        for x in range(10**6):
            drawn.append(x)
            yield x

    def cancel_both(log: str) -> None:
        single = pool.apply_async(append_line, (log, "apply"))
        assert single.cancel() is True
        results = pool.imap(functools.partial(append_line, log), endless())
        assert results.cancel() is True
        with pytest.raises(refpool.JobCancelledError):
            results.next(timeout=WAIT)
        with pytest.raises(StopIteration):
            results.next(timeout=WAIT)
        with pytest.raises(refpool.JobCancelledError):
            single.get(timeout=WAIT)

    assert run_behind_a_blocker(pool, tmp_path, cancel_both) == []
    assert len(drawn) < 1000  # read ahead a bounded amount before the cancel (API-5), no more after


def test_a_chunked_imap_cancels(make_pool: MakePool, tmp_path: pathlib.Path) -> None:
    """CANCEL-1, CANCEL-2: a chunked imap's iterator cancels as the job does."""
    pool = make_pool(1)

    def cancel(log: str) -> None:
        results = pool.imap(functools.partial(append_line, log), range(40), chunksize=4)
        assert results.cancel() is True
        with pytest.raises(refpool.JobCancelledError):
            next(results)
        assert list(results) == []

    assert run_behind_a_blocker(pool, tmp_path, cancel) == []


def test_a_settled_job_refuses_to_be_cancelled(make_pool: MakePool) -> None:
    """CANCEL-1: cancel() is False once the job has settled, and its outcome stands."""
    pool = make_pool(1)
    done = pool.apply_async(identity, (5,))
    assert done.get(timeout=WAIT) == 5
    assert done.cancel() is False
    assert done.get(timeout=WAIT) == 5
    results = pool.imap(identity, [1, 2])
    assert list(results) == [1, 2]
    assert results.cancel() is False  # type: ignore[attr-defined]


def test_a_running_task_runs_to_its_end_on_the_same_worker(
    make_pool: MakePool, tmp_path: pathlib.Path
) -> None:
    """CANCEL-1: the worker is not stopped; the task's outcome is discarded."""
    pool = make_pool(1)
    started, gate = tmp_path / "started", tmp_path / "gate"
    before = pool.apply(pid_of_worker)
    running = pool.apply_async(start_then_wait_for_file, (str(started), str(gate)))
    wait_for_file(str(started))
    assert running.cancel() is True
    with pytest.raises(refpool.JobCancelledError):
        running.get(timeout=WAIT)
    gate.touch()
    assert pool.apply_async(pid_of_worker).get(timeout=WAIT) == before
    assert pool._state is refpool.PoolState.RUN


def test_the_error_callback_runs_once_where_callbacks_run(
    make_pool: MakePool, tmp_path: pathlib.Path
) -> None:
    """CANCEL-2: error_callback with the JobCancelledError, in the result-handler thread, before
    get() returns; callback never."""
    pool = make_pool(1)
    calls: list[tuple[str, object, str]] = []

    def cancel(log: str) -> None:
        job = pool.apply_async(
            append_line,
            (log, "x"),
            callback=lambda value: calls.append(("callback", value, threading.current_thread().name)),
            error_callback=lambda error: calls.append(("error", error, threading.current_thread().name)),
        )
        assert job.cancel() is True
        with pytest.raises(refpool.JobCancelledError) as raised:
            job.get(timeout=WAIT)
        assert calls == [("error", raised.value, "refpool-result-handler")]
        assert job.cancel() is False

    assert run_behind_a_blocker(pool, tmp_path, cancel) == []
    assert len(calls) == 1


def test_other_jobs_taken_back_with_a_cancelled_one_run_exactly_once(
    make_pool: MakePool, tmp_path: pathlib.Path
) -> None:
    """CANCEL-3: the tasks of another job queued in the same inbox are taken back with the
    cancelled job's and handed out again: each runs once, and the trace says which were dropped."""
    trace: list[Observation] = []
    pool = make_pool(1, observer=trace.append)
    kept: list[refpool.ApplyResult] = []

    def interleave_and_cancel(log: str) -> None:
        doomed = []
        for x in range(3):
            doomed.append(pool.apply_async(append_line, (log, f"doomed{x}")))
            kept.append(pool.apply_async(append_line, (log, f"kept{x}")))
        for job in doomed:
            assert job.cancel() is True

    ran = run_behind_a_blocker(pool, tmp_path, interleave_and_cancel)
    assert sorted(ran) == ["kept0", "kept1", "kept2"]
    assert [job.get(timeout=WAIT) for job in kept] == ["kept0", "kept1", "kept2"]
    # Each doomed task was either dropped by the roster (handed out, then taken back) or never
    # handed out (the task handler dropped it): none is handed out after its job's cancel.
    cancelled = {o.job_id: (i, o) for i, o in enumerate(trace) if isinstance(o, JobCancelled)}
    assert len(cancelled) == 3
    for job_id, (at, event) in cancelled.items():
        handed = [
            (o.job_id, o.position) for o in trace[:at] if isinstance(o, TaskHandedOut) and o.job_id == job_id
        ]
        assert list(event.dropped) == handed and event.started == ()
        assert not any(isinstance(o, TaskHandedOut) and o.job_id == job_id for o in trace[at:])


def test_a_cancel_that_leaves_the_inbox_is_caught(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    """The check of CANCEL-1 catches a seeded bug: a cancel that drops the job's tasks from
    `ready` but takes nothing back from the workers' inboxes lets them run."""

    def leave_the_inbox(self: roster_module.Roster, job_id: int) -> roster_module.Handout:
        with self.cond:
            self.cancelled.add(job_id)
            others = [task for task in self.ready if task.key[0] != job_id]
            self.ready.clear()
            self.ready.extend(others)
            return roster_module.NOTHING

    monkeypatch.setattr(roster_module.Roster, "cancel", leave_the_inbox)
    hand_outs = HandOuts()
    with refpool.ThreadPool(1, observer=hand_outs) as pool:
        assert run_behind_a_blocker(pool, tmp_path, lambda log: cancel_a_map(log, pool, hand_outs)) != []
