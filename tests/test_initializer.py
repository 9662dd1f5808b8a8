"""An initializer that raises (LOST-4): no task is lost, replacements back off, and jobs fail
with the initializer's exception instead of waiting for a worker that cannot start."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

import refpool
import refpool.worker_handler
from refpool.conform.tasks import fail_first_initializers
from refpool.observer import Observation, WorkerReaped, WorkerStarted
from refpool.roster import INITIALIZER_FAILURES_BEFORE_FAILING, initializer_pause_ms

from pool_helpers import MakePool, failing_initializer, square

WAIT = 20  # seconds: far beyond what any of these takes; a bound, not a pace


def recording_starts() -> tuple[list[tuple[float, Observation]], Any]:
    """An observer that records when each worker started and exited."""
    seen_at: list[tuple[float, Observation]] = []

    def observe(seen: Observation) -> None:
        if isinstance(seen, (WorkerStarted, WorkerReaped)):
            seen_at.append((time.monotonic(), seen))

    return seen_at, observe


def shortest_pause(seen_at: list[tuple[float, Observation]]) -> float:
    """The shortest time from a worker's exit to the start of the next worker, in seconds."""
    pauses, last_exit = [], None
    for at, seen in seen_at:
        if isinstance(seen, WorkerReaped):
            last_exit = at
        elif last_exit is not None:
            pauses.append(at - last_exit)
    return min(pauses, default=float("inf"))


def check_jobs_fail_with_the_initializers_error(
    pool: Any, kind: str, seen_at: list[tuple[float, Observation]]
) -> None:
    """The check of LOST-4 for a pool whose initializer always raises; AssertionError if broken."""
    jobs = [pool.apply_async(square, (i,)) for i in range(5)]
    jobs.append(pool.map_async(square, range(100)))
    for job in jobs:
        try:
            job.get(timeout=3)
        except refpool.InitializerError as error:
            cause = error.__cause__
            assert isinstance(cause, RuntimeError) and str(cause) == "initializer failed", repr(cause)
            if kind != "thread":  # the worker's traceback, as for a task's exception (JOB-3)
                assert isinstance(cause.__cause__, refpool.RemoteTraceback)
                assert "failing_initializer" in cause.__cause__.tb  # type: ignore[attr-defined]
            assert error.failures >= INITIALIZER_FAILURES_BEFORE_FAILING
        except multiprocessing.TimeoutError:
            raise AssertionError("LOST-4: a job waited for a worker whose initializer raises") from None
        else:
            raise AssertionError("a job succeeded although no initializer can succeed")
    # A job submitted once the pool has given up fails at the next failure, after a pause.
    late = pool.apply_async(square, (7,))
    with pytest.raises(refpool.InitializerError):
        late.get(timeout=WAIT)
    if kind == "thread":
        # A thread's initializer raises the moment it starts, so every start
        # after the first follows the last exit by the whole pause (at least
        # 0.1 s); a process takes a while to fail, and a sibling's exit may
        # come in the middle of a pause. A lower bound: a slow machine keeps it.
        pause = shortest_pause(seen_at)
        assert pause >= 0.05, f"LOST-4: a worker was replaced {pause:.3f} s after an exit, no pause"
    starts = [seen for _, seen in seen_at if isinstance(seen, WorkerStarted)]
    # Replaced at once, as CPython replaces them, they would number in the hundreds by now.
    assert len(starts) <= 2 + 8, f"LOST-4: {len(starts)} workers started: no pause between them"


def test_an_initializer_that_always_raises_fails_the_jobs_with_its_exception(
    make_pool: MakePool, pool_kind: str
) -> None:
    """Checks LOST-4: every job fails with InitializerError, caused by the initializer's
    exception; replacements back off; close() and join() return."""
    seen_at, observe = recording_starts()
    pool = make_pool(2, initializer=failing_initializer, observer=observe)
    check_jobs_fail_with_the_initializers_error(pool, pool_kind, seen_at)
    pool.close()
    pool.join()


def test_a_worker_whose_initializer_raises_loses_no_task(make_pool: MakePool, tmp_path: Path) -> None:
    """Checks LOST-4: the tasks a worker held when its initializer raised run elsewhere, none
    fails with WorkerLostError, and once an initializer succeeds everything runs."""
    pool = make_pool(2, initializer=fail_first_initializers, initargs=(str(tmp_path), 2))
    jobs = [pool.apply_async(square, (i,)) for i in range(20)]
    mapped = pool.map_async(square, range(50), chunksize=3)
    assert [job.get(timeout=WAIT) for job in jobs] == [i * i for i in range(20)]
    assert mapped.get(timeout=WAIT) == [i * i for i in range(50)]
    pool.close()
    pool.join()
    attempts = sorted(path.name for path in tmp_path.iterdir())
    assert attempts[:3] == ["attempt-0", "attempt-1", "attempt-2"]


def test_the_pause_doubles_up_to_two_seconds() -> None:
    """Checks LOST-4 (the arithmetic; CrossHair proves its contract too)."""
    assert [initializer_pause_ms(n) for n in range(8)] == [0, 100, 200, 400, 800, 1600, 2000, 2000]


# --- the checks catch seeded bugs ---------------------------------------


SEEDED = [
    # Tasks wait for a worker forever, as in CPython.
    ("refpool.roster.INITIALIZER_FAILURES_BEFORE_FAILING", 10**9, "LOST-4: a job waited"),
    # Workers are replaced at once, as in CPython.
    ("refpool.worker_handler.initializer_pause_ms", lambda failures: 0, "no pause"),
]


@pytest.mark.parametrize(("target", "seeded", "caught"), SEEDED, ids=["never-gives-up", "no-pause"])
def test_the_check_catches_a_seeded_bug(
    monkeypatch: pytest.MonkeyPatch, target: str, seeded: object, caught: str
) -> None:
    """Checks LOST-4: with each seeded bug, the check above fails."""
    monkeypatch.setattr(target, seeded)
    seen_at, observe = recording_starts()
    pool = refpool.ThreadPool(2, initializer=failing_initializer, observer=observe)
    try:
        with pytest.raises(AssertionError, match=caught):
            check_jobs_fail_with_the_initializers_error(pool, "thread", seen_at)
    finally:
        pool.terminate()
        pool.join()
