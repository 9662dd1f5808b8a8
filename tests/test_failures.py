"""Failures that fail one job, never the pool (CPython hangs on several of them)."""

from __future__ import annotations

import pytest

import refpool

from pool_helpers import (
    MakePool,
    NeedsTwoArgs,
    raise_needs_two_args,
    raise_unpickles_as_a_string,
    return_not_unpicklable,
    square,
    unpicklable_result,
)

WAIT = 30


def explode(value: object) -> None:
    raise RuntimeError(f"callback got {value!r}")


def test_a_raising_callback_fails_only_its_job(make_pool: MakePool) -> None:
    """CPython's result handler dies here and every later get() hangs (gh-83371). (JOB-5)"""
    pool = make_pool()
    bad = pool.apply_async(square, (3,), callback=explode)
    bad_map = pool.map_async(square, range(4), callback=explode)
    with pytest.raises(RuntimeError, match="callback got 9"):
        bad.get(WAIT)
    with pytest.raises(RuntimeError, match=r"callback got \[0, 1, 4, 9\]"):
        bad_map.get(WAIT)
    assert pool.map(square, range(5)) == [0, 1, 4, 9, 16]


def test_a_raising_error_callback_fails_only_its_job(make_pool: MakePool) -> None:
    """Checks JOB-5."""
    pool = make_pool()
    job = pool.apply_async(square, ("x",), error_callback=explode)
    with pytest.raises(RuntimeError, match="callback got TypeError"):
        job.get(WAIT)
    assert pool.apply(square, (4,)) == 16


def test_an_exception_the_parent_cannot_unpickle_fails_only_its_job(make_process_pool: MakePool) -> None:
    """CPython's result handler dies unpickling it and the pool hangs (gh-79492). (ERR-2)"""
    pool = make_process_pool()
    with pytest.raises(
        refpool.ResultDecodingError, match=r"exception of task 0 .* could not be unpickled"
    ) as caught:
        pool.apply(raise_needs_two_args)
    assert isinstance(caught.value.__cause__, TypeError)
    assert any("NeedsTwoArgs" in note for note in caught.value.__notes__)  # the worker's traceback
    assert pool.map(square, range(3)) == [0, 1, 4]


def test_an_exception_that_unpickles_as_something_else_fails_only_its_job(
    make_process_pool: MakePool,
) -> None:
    """Checks ERR-2."""
    pool = make_process_pool()
    with pytest.raises(refpool.ResultDecodingError, match="'not an exception' is not an exception"):
        pool.apply(raise_unpickles_as_a_string)
    assert pool.apply(square, (4,)) == 16


def test_a_result_the_parent_cannot_unpickle_fails_only_its_job(make_process_pool: MakePool) -> None:
    """Checks ERR-2."""
    pool = make_process_pool()
    with pytest.raises(refpool.ResultDecodingError, match="result of task 0") as caught:
        pool.apply(return_not_unpicklable)
    assert "refuses to be unpickled" in str(caught.value.__cause__)
    assert pool.apply(square, (5,)) == 25


def test_a_result_the_worker_cannot_pickle_is_a_maybe_encoding_error(make_process_pool: MakePool) -> None:
    """Checks ERR-1."""
    import multiprocessing.pool

    pool = make_process_pool()
    with pytest.raises(multiprocessing.pool.MaybeEncodingError, match="Error sending result"):
        pool.apply(unpicklable_result)
    with pytest.raises(refpool.MaybeEncodingError):
        pool.map(unpicklable_result, range(4))
    assert pool.apply(square, (6,)) == 36


def test_a_task_that_cannot_be_pickled_fails_its_job(make_process_pool: MakePool) -> None:
    """Checks ERR-3."""
    pool = make_process_pool()
    with pytest.raises(Exception, match="pickle"):
        pool.apply(lambda: 1)
    with pytest.raises(Exception, match="pickle"):
        pool.map(lambda x: x, range(3))
    assert pool.apply(square, (7,)) == 49


def test_a_thread_pool_runs_what_processes_cannot_pickle() -> None:
    with refpool.ThreadPool(2) as pool:
        assert pool.apply(lambda: NeedsTwoArgs(1, 2).b) == 2
        assert pool.map(lambda x: -x, range(3)) == [0, -1, -2]
