"""Jobs and the job cache, pure: no pool, outcomes delivered by hand."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from refpool.jobs import ApplyResult, IMapIterator, IMapUnorderedIterator, JobCache, MapResult


def test_apply_result_settles_once_and_leaves_the_cache() -> None:
    """Checks JOB-1, JOB-2."""
    cache = JobCache()
    job = ApplyResult(cache, pool=None)
    assert len(cache) == 1 and not job.ready()
    with pytest.raises(ValueError, match="not ready"):
        job.successful()
    cache.deliver(job.job_id, 0, True, 42)
    cache.deliver(job.job_id, 0, False, RuntimeError("late"))  # ignored: settled already
    assert job.ready() and job.successful() and job.get() == 42
    assert len(cache) == 0


def test_get_times_out_with_the_multiprocessing_error() -> None:
    """Checks JOB-2."""
    job = ApplyResult(JobCache(), pool=None)
    with pytest.raises(multiprocessing.TimeoutError):
        job.get(timeout=0.01)


def test_a_failed_job_raises_its_exception() -> None:
    cache = JobCache()
    job = ApplyResult(cache, pool=None)
    cache.deliver(job.job_id, 0, False, KeyError("k"))
    assert not job.successful()
    with pytest.raises(KeyError):
        job.get()


def test_the_callback_runs_before_get_returns() -> None:
    """Checks JOB-4."""
    seen: list[int] = []
    cache = JobCache()
    job = ApplyResult(cache, None, callback=seen.append)
    cache.deliver(job.job_id, 0, True, 5)
    assert job.get(0) == 5 and seen == [5]


def test_a_raising_callback_fails_only_its_job() -> None:
    """Checks JOB-5."""
    cache = JobCache()

    def callback(value: object) -> None:
        raise RuntimeError("callback broke")

    bad = ApplyResult(cache, None, callback=callback)
    good = ApplyResult(cache, None)
    cache.deliver(bad.job_id, 0, True, 1)
    cache.deliver(good.job_id, 0, True, 2)
    with pytest.raises(RuntimeError, match="callback broke"):
        bad.get(0)
    assert good.get(0) == 2 and len(cache) == 0


def test_a_raising_error_callback_replaces_the_error_and_keeps_it_as_context() -> None:
    """Checks JOB-5."""
    cache = JobCache()

    def error_callback(error: BaseException) -> None:
        raise RuntimeError("error callback broke")

    job = ApplyResult(cache, None, error_callback=error_callback)
    original = KeyError("original")
    cache.deliver(job.job_id, 0, False, original)
    with pytest.raises(RuntimeError, match="error callback broke") as caught:
        job.get(0)
    assert caught.value.__context__ is original


def test_map_result_assembles_chunks_in_order() -> None:
    cache = JobCache()
    job = MapResult(cache, None, chunksize=2, length=5)
    cache.deliver(job.job_id, 2, True, [4])
    cache.deliver(job.job_id, 0, True, [0, 1])
    assert not job.ready()
    cache.deliver(job.job_id, 1, True, [2, 3])
    assert job.get(0) == [0, 1, 2, 3, 4]


def test_map_result_fails_on_the_first_failed_chunk() -> None:
    """Checks JOB-6."""
    cache = JobCache()
    errors: list[BaseException] = []
    job = MapResult(cache, None, chunksize=1, length=3, error_callback=errors.append)
    cache.deliver(job.job_id, 1, False, ValueError("chunk 1"))
    assert job.ready() and len(cache) == 0
    cache.deliver(job.job_id, 0, True, [0])  # ignored
    with pytest.raises(ValueError, match="chunk 1"):
        job.get(0)
    assert len(errors) == 1


def test_an_empty_map_settles_at_once_and_calls_the_callback() -> None:
    """Checks API-2."""
    seen: list[object] = []
    cache = JobCache()
    job = MapResult(cache, None, chunksize=1, length=0, callback=seen.append)
    assert job.get(0) == [] and seen == [[]] and len(cache) == 0


def test_imap_yields_in_order_and_stops_at_the_length() -> None:
    """Checks API-4."""
    cache = JobCache()
    it: IMapIterator[int] = IMapIterator(cache, None)
    cache.deliver(it.job_id, 1, True, "b")
    with pytest.raises(multiprocessing.TimeoutError):
        it.next(timeout=0.01)  # item 0 is not there yet
    cache.deliver(it.job_id, 0, True, "a")
    it._set_length(3)
    cache.deliver(it.job_id, 2, False, KeyError("c"))
    assert it.next(0) == "a" and it.next(0) == "b"
    with pytest.raises(KeyError):
        it.next(0)
    with pytest.raises(StopIteration):
        it.next(0)
    assert len(cache) == 0


def test_imap_unordered_yields_as_outcomes_come() -> None:
    cache = JobCache()
    it: IMapUnorderedIterator[str] = IMapUnorderedIterator(cache, None)
    cache.deliver(it.job_id, 1, True, "b")
    cache.deliver(it.job_id, 0, True, "a")
    it._set_length(2)
    assert list(it) == ["b", "a"]


def test_imap_next_wakes_when_an_item_arrives() -> None:
    cache = JobCache()
    it: IMapIterator[int] = IMapIterator(cache, None)
    threading.Timer(0.05, cache.deliver, (it.job_id, 0, True, 9)).start()
    assert it.next(timeout=10) == 9


def test_abandon_all_fails_every_pending_job_once() -> None:
    """Checks SHUT-5, JOB-1."""
    cache = JobCache()
    apply_job = ApplyResult(cache, None)
    map_job = MapResult(cache, None, chunksize=1, length=2)
    it: IMapIterator[int] = IMapIterator(cache, None)
    cache.deliver(it.job_id, 0, True, 1)
    cache.abandon_all(lambda: RuntimeError("terminated"))
    assert len(cache) == 0
    for job in (apply_job, map_job):
        with pytest.raises(RuntimeError, match="terminated"):
            job.get(0)
    assert it.next(0) == 1
    with pytest.raises(RuntimeError, match="terminated"):
        it.next(0)
    with pytest.raises(StopIteration):
        it.next(0)


def test_a_job_keeps_its_pool_alive_until_it_settles() -> None:
    """Checks LIFE-7."""
    cache = JobCache()
    pool = object()
    job = ApplyResult(cache, pool)
    assert job._pool is pool
    cache.deliver(job.job_id, 0, True, None)
    assert job._pool is None
