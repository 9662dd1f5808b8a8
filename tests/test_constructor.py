"""Constructor arguments: CPython's checks and messages, and a clear error for bad values."""

from __future__ import annotations

import multiprocessing
import os

import pytest

import refpool

from pool_helpers import pid_of_worker


@pytest.mark.parametrize("processes", [0, -3])
def test_too_few_processes(processes: int) -> None:
    """Checks API-7."""
    with pytest.raises(ValueError) as caught:
        refpool.Pool(processes)
    assert str(caught.value) == "Number of processes must be at least 1"
    assert f"processes={processes}" in caught.value.__notes__[0]


@pytest.mark.parametrize("processes", ["2", 2.0, True])
def test_processes_must_be_an_int(processes: object) -> None:
    """Checks API-12."""
    with pytest.raises(TypeError, match=f"processes must be an int or None, not {processes!r}"):
        refpool.ThreadPool(processes)  # type: ignore[arg-type]


@pytest.mark.parametrize("maxtasks", [0, -1, 1.5, "3", True])
def test_bad_maxtasksperchild(maxtasks: object) -> None:
    """Checks API-7."""
    with pytest.raises(ValueError) as caught:
        refpool.Pool(1, maxtasksperchild=maxtasks)  # type: ignore[arg-type]
    assert str(caught.value) == "maxtasksperchild must be a positive int or None"
    assert repr(maxtasks) in caught.value.__notes__[0]


def test_initializer_must_be_callable() -> None:
    """Checks API-7."""
    with pytest.raises(TypeError, match=r"^initializer must be a callable$"):
        refpool.Pool(1, initializer=3)  # type: ignore[arg-type]


def test_no_process_is_started_when_the_arguments_are_bad() -> None:
    with pytest.raises(ValueError):
        refpool.Pool(0)
    assert multiprocessing.active_children() == []


def test_processes_none_means_the_cpus_this_process_may_use() -> None:
    """Checks API-12."""
    pool = refpool.ThreadPool()
    try:
        assert pool._processes == len(os.sched_getaffinity(0))
        assert f"pool_size={len(os.sched_getaffinity(0))}" in repr(pool)
    finally:
        pool.terminate()
        pool.join()


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_context_selects_the_start_method(method: str) -> None:
    """Checks API-10."""
    with refpool.Pool(2, context=multiprocessing.get_context(method)) as pool:
        pids = set(pool.map(pid_of_worker, range(8), chunksize=1))
        names = {h.process.name for h in pool._live_core().roster.handles()}  # type: ignore[attr-defined]
    assert os.getpid() not in pids
    prefix = {"fork": "ForkPoolWorker-", "spawn": "SpawnPoolWorker-", "forkserver": "ForkServerPoolWorker-"}
    assert names and all(name.startswith(prefix[method]) for name in names)  # CPython's names
