"""The checks of the ERR clauses: values that cannot travel between the caller and a worker."""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import pickle
from collections.abc import Callable
from typing import Any

from .. import tasks
from ..registry import PoolFactory, Skip, require, step
from .common import (
    clause,
    describe,
    error_of,
    process_pool,
    running,
    value_of,
)


@clause("ERR-1", "a result the worker cannot pickle fails its task with MaybeEncodingError")
def err_1(make_pool: PoolFactory) -> None:
    with running(process_pool(make_pool, 2)) as pool:
        maybe = multiprocessing.pool.MaybeEncodingError  # type: ignore[attr-defined]
        error = error_of(pool.apply_async(tasks.unpicklable_result), "apply_async returning a lock")
        require(isinstance(error, maybe), f"a result that cannot be pickled failed with {describe(error)}")
        error = error_of(pool.map_async(tasks.unpicklable_result_of, [1, 2], 1), "map_async returning a lock")
        require(
            isinstance(error, maybe), f"a map result that cannot be pickled failed with {describe(error)}"
        )
        got = value_of(pool.apply_async(tasks.square, (6,)), "apply_async after an unpicklable result")
        require(got == 36, f"after an unpicklable result, square(6) returned {got!r}")


@clause("ERR-2", "a result or exception the parent cannot unpickle fails its job", extension=True)
def err_2(make_pool: PoolFactory) -> None:
    with running(process_pool(make_pool, 2)) as pool:
        cases = [
            ("a result that cannot be unpickled", tasks.undecodable_result),
            ("an exception that cannot be unpickled", tasks.raise_undecodable),
            ("an exception that unpickles as an int", tasks.raise_non_exception),
        ]
        for what, task in cases:
            error = error_of(
                pool.apply_async(task),
                what,
                f"{what} left get() waiting (CPython's result handler dies: gh-79492)",
            )
            require(
                type(error).__name__ == "ResultDecodingError",
                f"{what} failed its job with {describe(error)}, not ResultDecodingError",
            )
            if "as an int" not in what:
                require(
                    error.__cause__ is not None,
                    f"the ResultDecodingError for {what} has no __cause__ (the unpickling error)",
                )
            got = value_of(pool.apply_async(tasks.square, (7,)), f"apply_async after {what}")
            require(got == 49, f"after {what}, square(7) returned {got!r}")


@clause("ERR-3", "a task the parent cannot pickle fails its job with the pickling error")
def err_3(make_pool: PoolFactory) -> None:
    with running(process_pool(make_pool, 2)) as pool:

        def local(x: int = 0) -> int:
            return x

        try:
            pickle.dumps(local)
            raise Skip("a local function pickles here")
        except (pickle.PicklingError, AttributeError, TypeError) as expected:
            kind = type(expected)
        submissions: list[tuple[str, Callable[[], Any]]] = [
            ("apply_async(a local function)", lambda: pool.apply_async(local)),
            ("map_async(a local function, [1, 2])", lambda: pool.map_async(local, [1, 2])),
        ]
        for what, job in submissions:
            step(what)
            try:
                pending = job()
            except kind:
                continue  # refused at once: the job fails with the pickling error
            error = error_of(pending, what)
            require(
                isinstance(error, kind),
                f"{what} failed with {describe(error)}, not the pickling error {kind.__name__}",
            )
        got = value_of(pool.apply_async(tasks.square, (8,)), "apply_async after an unpicklable task")
        require(got == 64, f"after an unpicklable task, square(8) returned {got!r}")
