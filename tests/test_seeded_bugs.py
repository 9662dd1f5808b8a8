"""The checks catch real bugs: each test seeds one bug and shows its check fail.

Every guarantee the behaviour tests rely on is broken here on purpose, once,
to show that the assertion guarding it is not vacuous.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator

import pytest

import refpool
from refpool.roster import ReadyTask, Roster, WorkerRecord

from pool_helpers import exit_abruptly, square
from seeded import forget_one_sentinel

SHORT = 3  # seconds: long enough for the correct pool, which answers in milliseconds


@pytest.fixture
def fork_pool() -> Iterator[refpool.Pool]:
    pool = refpool.Pool(2, context=multiprocessing.get_context("fork"))
    yield pool
    pool.terminate()
    pool.join()


def test_without_task_ownership_a_lost_worker_hangs_its_job(
    monkeypatch: pytest.MonkeyPatch, fork_pool: refpool.Pool
) -> None:
    """Seeded bug: the roster forgets which worker holds a task (CPython's design). (LOST-1, WORK-3)"""
    real_hold = Roster._hold

    def forgetful_hold(self: Roster, record: WorkerRecord, task: ReadyTask) -> int:
        number = real_hold(self, record, task)
        record.held.pop(task.key)
        return number

    monkeypatch.setattr(Roster, "_hold", forgetful_hold)
    job = fork_pool.apply_async(exit_abruptly, (3,))
    # What test_lost_workers asserts (WorkerLostError promptly) now fails: the job hangs.
    with pytest.raises(multiprocessing.TimeoutError):
        job.get(timeout=SHORT)


def test_without_replacement_the_worker_count_check_fails(
    monkeypatch: pytest.MonkeyPatch, fork_pool: refpool.Pool
) -> None:
    """Seeded bug: the worker handler ignores exits. (WORK-1)"""
    from test_lost_workers import live_worker_pids

    monkeypatch.setattr(type(fork_pool._live_core().worker_handler), "maintain", lambda self: None)
    with pytest.raises(refpool.WorkerLostError):
        fork_pool.apply_async(exit_abruptly, (3,)).get(timeout=SHORT)
    monkeypatch.setattr("test_lost_workers.WAIT", SHORT)
    with pytest.raises(AssertionError, match="did not return to 2 live workers"):
        live_worker_pids(fork_pool, 2)


def test_one_sentinel_too_few_makes_join_hang(
    monkeypatch: pytest.MonkeyPatch, fork_pool: refpool.Pool
) -> None:
    """Seeded bug: the roster sends one shutdown sentinel too few. (SHUT-2)"""
    forget_one_sentinel(monkeypatch)
    assert fork_pool.map(square, range(4)) == [0, 1, 4, 9]
    fork_pool.close()
    joiner = threading.Thread(target=fork_pool.join, daemon=True)
    joiner.start()
    joiner.join(SHORT)
    assert joiner.is_alive()  # what test_shutdown relies on, join() returning, fails
    fork_pool.terminate()
    joiner.join(SHORT)
    assert not joiner.is_alive()
