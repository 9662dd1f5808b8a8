"""Every public method, on Pool (fork, spawn, forkserver) and ThreadPool."""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import operator
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import refpool
from refpool.observer import Observation, OutcomeDelivered

from pool_helpers import (
    MakePool,
    add,
    fail_on,
    fail_with_value_error,
    identity,
    initialized_with,
    raising_generator,
    record_initargs,
    sleep_for,
    square,
)

WAIT = 30  # seconds: a bound on every blocking call, never reached when things work


def test_apply(make_pool: MakePool) -> None:
    """Checks API-1."""
    pool = make_pool()
    assert pool.apply(add, (2, 3)) == 5
    assert pool.apply(add, (), {"a": 1, "b": 2}) == 3


def test_apply_async_get_wait_ready_successful(make_pool: MakePool) -> None:
    """Checks API-1, JOB-2."""
    pool = make_pool()
    result = pool.apply_async(square, (7,))
    result.wait(WAIT)
    assert result.ready() and result.successful()
    assert result.get(WAIT) == 49


def test_get_times_out_then_succeeds(make_pool: MakePool) -> None:
    """Checks JOB-2."""
    pool = make_pool(1)
    result = pool.apply_async(sleep_for, (0.5,))
    with pytest.raises(multiprocessing.TimeoutError):
        result.get(timeout=0.01)
    with pytest.raises(ValueError, match="not ready"):
        result.successful()
    assert result.get(WAIT) == 0.5


def test_map_and_map_async(make_pool: MakePool) -> None:
    """Checks API-2, API-3."""
    pool = make_pool()
    assert pool.map(square, range(100)) == [x * x for x in range(100)]
    assert pool.map(square, range(10), chunksize=3) == [x * x for x in range(10)]
    assert pool.map_async(square, iter(range(5))).get(WAIT) == [0, 1, 4, 9, 16]


def test_map_of_nothing_is_an_empty_list(make_pool: MakePool) -> None:
    """Checks API-2."""
    pool = make_pool()
    seen: list[object] = []
    assert pool.map(square, []) == []
    assert pool.map_async(square, [], callback=seen.append).get(WAIT) == []
    assert seen == [[]]


def test_starmap_and_starmap_async(make_pool: MakePool) -> None:
    """Checks API-2."""
    pool = make_pool()
    pairs = [(i, i) for i in range(20)]
    assert pool.starmap(add, pairs) == [2 * i for i in range(20)]
    assert pool.starmap_async(add, pairs, chunksize=7).get(WAIT) == [2 * i for i in range(20)]


@pytest.mark.parametrize("chunksize", [1, 4])
def test_imap_keeps_order(make_pool: MakePool, chunksize: int) -> None:
    """Checks API-4."""
    pool = make_pool()
    assert list(pool.imap(square, range(30), chunksize)) == [x * x for x in range(30)]


@pytest.mark.parametrize("chunksize", [1, 4])
def test_imap_unordered_gives_every_result(make_pool: MakePool, chunksize: int) -> None:
    """Checks API-4."""
    pool = make_pool()
    assert sorted(pool.imap_unordered(square, range(30), chunksize)) == [x * x for x in range(30)]


def test_imap_next_with_timeout(make_pool: MakePool) -> None:
    """Checks API-4, JOB-2."""
    pool = make_pool(1)
    it = pool.imap(sleep_for, [0.5, 0.0])
    assert isinstance(it, refpool.IMapIterator)
    with pytest.raises(multiprocessing.TimeoutError):
        it.next(timeout=0.01)
    assert it.next(timeout=WAIT) == 0.5
    assert it.next(timeout=WAIT) == 0.0
    with pytest.raises(StopIteration):
        it.next(timeout=WAIT)


@pytest.mark.parametrize("processes", [1, 3])
def test_imap_reads_its_input_only_as_workers_need_it(make_pool: MakePool, processes: int) -> None:
    """Checks API-5: as each item is read, at most 65 + depth * processes items have been read
    whose outcomes the pool has not delivered (the workers hold `depth` each, at most)."""
    trace: list[Observation] = []
    pool = make_pool(processes, observer=trace.append)
    bound = 65 + pool._live_core().roster.depth * processes
    ahead: list[int] = []

    def items(count: int) -> Iterator[int]:
        for i in range(count):
            delivered = sum(1 for seen in list(trace) if isinstance(seen, OutcomeDelivered))
            ahead.append(i - delivered)
            yield i

    assert list(pool.imap(identity, items(2_000))) == list(range(2_000))
    assert max(ahead) <= bound  # CPython's imap reads all 2,000 first
    assert max(ahead) > 1  # and still reads ahead of the workers: they never wait for input


def test_imap_over_a_failing_input_stops_with_its_error(make_pool: MakePool) -> None:
    """Checks API-6."""
    pool = make_pool()
    it = pool.imap(identity, raising_generator(3))
    assert [it.next(WAIT) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(KeyError, match="input failed"):
        it.next(WAIT)
    with pytest.raises(StopIteration):
        it.next(WAIT)


def test_an_exception_in_a_task_reaches_the_caller(make_pool: MakePool, pool_kind: str) -> None:
    """Checks JOB-3, JOB-6."""
    pool = make_pool()
    with pytest.raises(ValueError, match="bad value 1") as caught:
        pool.apply(fail_with_value_error, (1,))
    if pool_kind != "thread":  # as CPython: a process's traceback comes as text
        cause: Any = caught.value.__cause__
        # The stdlib's own class and layout: code written for CPython's pool reads `.tb`.
        assert isinstance(cause, multiprocessing.pool.RemoteTraceback)  # type: ignore[attr-defined]
        assert cause is not None and type(cause) is refpool.RemoteTraceback
        assert cause.tb.startswith('\n"""\nTraceback (most recent call last):') and cause.tb.endswith('"""')
        assert "fail_with_value_error" in cause.tb and str(cause) == cause.tb
    with pytest.raises(ValueError, match="item 3 is bad"):
        pool.map(fail_on, range(10), chunksize=2)
    results = list_outcomes(pool.imap(fail_on, range(5)))
    assert results == [0, 1, 2, "ValueError", 4]


def list_outcomes(iterator: object) -> list[object]:
    out: list[object] = []
    while True:
        try:
            out.append(iterator.next(WAIT))  # type: ignore[attr-defined]
        except StopIteration:
            return out
        except Exception as exc:
            out.append(type(exc).__name__)


def test_callback_and_error_callback(make_pool: MakePool) -> None:
    """Checks JOB-4."""
    pool = make_pool()
    values: list[object] = []
    errors: list[BaseException] = []
    pool.apply_async(square, (3,), callback=values.append).get(WAIT)
    pool.map_async(square, range(3), callback=values.append).get(WAIT)
    failed = pool.apply_async(fail_with_value_error, (0,), error_callback=errors.append)
    with pytest.raises(ValueError):
        failed.get(WAIT)
    assert values == [9, [0, 1, 4]]
    assert len(errors) == 1 and isinstance(errors[0], ValueError)


def test_initializer_and_initargs(make_pool: MakePool) -> None:
    """Checks API-8."""
    pool = make_pool(2, initializer=record_initargs, initargs=(1, "two"))
    assert pool.map(initialized_with, range(4)) == [(1, "two")] * 4


def test_context_manager_terminates(make_pool: MakePool) -> None:
    """Checks LIFE-5."""
    with make_pool() as pool:
        assert pool.map(square, range(3)) == [0, 1, 4]
        assert pool._state is refpool.PoolState.RUN
    assert pool._state is refpool.PoolState.TERMINATE


def test_close_then_join_finishes_the_submitted_work(make_pool: MakePool) -> None:
    """Checks SHUT-4, JOB-1."""
    pool = make_pool()
    pending = pool.map_async(square, range(50), chunksize=1)
    pool.close()
    pool.join()
    assert pending.get(0) == [x * x for x in range(50)]


def test_lifecycle_errors_carry_the_stdlib_messages(make_pool: MakePool) -> None:
    """Checks LIFE-3, LIFE-4, LIFE-5."""
    pool = make_pool()
    with pytest.raises(ValueError, match="Pool is still running"):
        pool.join()
    pool.close()
    pool.close()  # a no-op
    for submit in (
        lambda: pool.apply_async(square, (1,)),
        lambda: pool.map(square, [1]),
        lambda: pool.imap(square, [1]),
        lambda: pool.imap_unordered(square, [1]),
        lambda: pool.starmap(add, [(1, 2)]),
        pool.__enter__,
    ):
        with pytest.raises(ValueError, match="Pool not running"):
            submit()
    pool.join()
    pool.terminate()
    pool.close()  # still a no-op
    assert pool._state is refpool.PoolState.TERMINATE


def test_chunksize_below_one_is_refused(make_pool: MakePool) -> None:
    """Checks API-3, API-11."""
    pool = make_pool()
    for call in (
        lambda: pool.map(square, range(3), chunksize=0),
        lambda: pool.map_async(square, range(3), chunksize=-1),
        lambda: pool.starmap(add, [(1, 2)], chunksize=0),
        lambda: pool.imap(square, range(3), chunksize=0),
        lambda: pool.imap_unordered(square, range(3), chunksize=0),
    ):
        with pytest.raises(ValueError, match="Chunksize must be 1\\+"):
            call()


def test_a_callback_that_is_not_callable_is_refused_at_once(make_pool: MakePool) -> None:
    """Checks JOB-7."""
    pool = make_pool()
    with pytest.raises(TypeError, match="callback must be a callable or None, not 3"):
        pool.apply_async(square, (1,), callback=3)  # type: ignore[arg-type]


def test_repr_shows_class_state_and_size(make_pool: MakePool, pool_kind: str) -> None:
    """Checks API-9."""
    pool = make_pool(3)
    name = "ThreadPool" if pool_kind == "thread" else "Pool"
    assert repr(pool) == f"<refpool.pool.{name} state=RUN pool_size=3>"
    pool.close()
    assert "state=CLOSE" in repr(pool)


def test_a_pool_cannot_be_pickled(make_pool: MakePool) -> None:
    """Checks API-9."""
    import pickle

    with pytest.raises(NotImplementedError, match="cannot be passed between processes or pickled"):
        pickle.dumps(make_pool())


def test_many_threads_submitting_while_one_closes_lose_nothing(make_pool: MakePool) -> None:
    """Checks LIFE-6."""
    pool = make_pool()
    accepted: list[refpool.ApplyResult] = []
    refused = 0
    lock = threading.Lock()
    start = threading.Barrier(5)

    def submit() -> None:
        nonlocal refused
        start.wait()
        for i in range(40):
            try:
                result = pool.apply_async(operator.neg, (i,))
            except ValueError:
                with lock:
                    refused += 1
            else:
                with lock:
                    accepted.append(result)

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    start.wait()
    pool.close()
    for t in threads:
        t.join()
    pool.join()
    assert len(accepted) + refused == 160
    assert all(r.ready() for r in accepted)  # every accepted job settled before join() returned


def test_no_task_waits_behind_a_long_one_while_a_worker_is_idle() -> None:
    """As with CPython's shared queue: a free worker takes the next task. (WORK-5)"""
    released = threading.Event()
    with refpool.ThreadPool(2) as pool:
        long_task = pool.apply_async(released.wait, (WAIT,))
        short = [pool.apply_async(square, (i,)) for i in range(3)]
        releaser = pool.apply_async(released.set)
        # If the releaser were queued behind the long task, that task would time out.
        assert long_task.get(WAIT) is True
        assert [r.get(WAIT) for r in short] == [0, 1, 4] and releaser.get(WAIT) is None
