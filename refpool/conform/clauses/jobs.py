"""The checks of the JOB clauses: jobs, their results, and callbacks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .. import tasks
from ..registry import Broken, PoolFactory, require, step
from .common import (
    SHORT,
    WAIT,
    clause,
    describe,
    error_of,
    next_of,
    require_gives_up,
    running,
    short,
    timed_out,
    uses_processes,
    value_of,
    within,
)
from .gates import Gate
from .states import RUN, require_state


@clause("JOB-1", "every job settles exactly once; none is unsettled once the pool is joined")
def job_1(make_pool: PoolFactory) -> None:
    with running(make_pool(3)) as pool:
        calls: dict[str, int] = {}
        lock = threading.Lock()

        def count(name: str) -> Callable[[Any], None]:
            def callback(_: Any) -> None:
                with lock:
                    calls[name] = calls.get(name, 0) + 1

            return callback

        step("submit 100 apply_async, 3 map_async, 2 starmap_async, imap, imap_unordered")
        jobs: dict[str, tuple[Any, Any]] = {}
        for i in range(100):
            name = f"apply{i}"
            jobs[name] = (pool.apply_async(tasks.square, (i,), callback=count(name)), i * i)
        for size in (1, 3, None):
            name = f"map{size}"
            job = pool.map_async(tasks.square, range(40), size, callback=count(name))
            jobs[name] = (job, [x * x for x in range(40)])
        for size in (2, None):
            name = f"starmap{size}"
            job = pool.starmap_async(tasks.add, [(x, x) for x in range(30)], size, callback=count(name))
            jobs[name] = (job, [2 * x for x in range(30)])
        failing = pool.apply_async(tasks.fail_negative, (-1,), error_callback=count("failing"))
        ordered = pool.imap(tasks.square, range(30))
        unordered = pool.imap_unordered(tasks.square, range(30))
        pool.close()
        within("join() after close() with 100+ jobs submitted", pool.join)
        unsettled = [name for name, (job, _) in jobs.items() if not job.ready()]
        require(not unsettled, f"after join(), {len(unsettled)} jobs were not ready, e.g. {unsettled[:1]}")
        require(failing.ready(), "after join(), a failed job was not ready")
        wrong = [name for name, (job, expected) in jobs.items() if job.get(0) != expected]
        require(not wrong, f"after join(), {wrong[:1]} had a wrong value")
        twice = {name: n for name, n in calls.items() if n != 1}
        missing = [name for name in [*jobs, "failing"] if name not in calls]
        require(not twice, f"callbacks ran more than once: {twice}")
        require(not missing, f"callbacks never ran for {len(missing)} settled jobs, e.g. {missing[:1]}")
        for name, iterator in (("imap", ordered), ("imap_unordered", unordered)):
            got = [next_of(iterator, f"{name} after join()") for _ in range(31)]
            values = [v for kind, v in got if kind == "value"]
            require(
                sorted(values) == [x * x for x in range(30)] and got[-1][0] == "stop",
                f"{name} after join() yielded {short(got)}",
            )


@clause("JOB-2", "get(timeout) raises multiprocessing.TimeoutError; wait, ready and successful")
def job_2(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        for submit in ("apply_async", "map_async"):
            with Gate() as gate:
                if submit == "apply_async":
                    job = pool.apply_async(tasks.hold, (gate.task("a"),))
                    expected: Any = "a"
                else:
                    job = pool.map_async(tasks.hold, [gate.task("a"), gate.task("b", wait=False)])
                    expected = ["a", "b"]
                gate.wait_for(["started-a"], f"{submit}: wait for the held task to start")
                step(f"{submit}: get({SHORT}) while the task is held")
                require_gives_up(job.get, f"{submit}: get", "while the task was held")
                require(not job.ready(), f"{submit}: ready() is True while the task is held")
                step(f"{submit}: wait({SHORT}) while the task is held")
                started = time.monotonic()
                job.wait(SHORT)
                require(time.monotonic() - started >= SHORT * 0.9, f"{submit}: wait({SHORT}) returned early")
                try:
                    early = job.successful()
                except ValueError:
                    pass
                except Exception as wrong:
                    raise Broken(
                        f"{submit}: successful() on a job not ready raised {describe(wrong)}, not ValueError"
                    ) from None
                else:
                    raise Broken(
                        f"{submit}: successful() on a job not ready returned {early!r}, not ValueError"
                    )
                gate.open()
                step(f"{submit}: wait({WAIT:g}) after the gate opened")
                job.wait(WAIT)
                require(job.ready(), f"{submit}: not ready after wait({WAIT:g}), the gate being open")
                require(
                    job.successful() is True, f"{submit}: successful() is not True for a job that succeeded"
                )
                got = job.get(0)
                require(got == expected, f"{submit}: get() returned {got!r}, not {expected!r}")
        failing = pool.apply_async(tasks.fail_negative, (-2,))
        step(f"apply_async(fail_negative, (-2,)).wait({WAIT:g})")
        failing.wait(WAIT)
        require(failing.ready(), "a failing job was not ready")
        require(failing.successful() is False, "successful() is not False for a job that failed")
        error = error_of(failing, "apply_async(fail_negative, (-2,))")
        require(
            isinstance(error, ValueError) and "-2" in str(error),
            f"get() on a failed job raised {describe(error)}, not its ValueError",
        )


@clause("JOB-3", "a task's exception is re-raised by get(), with the worker's traceback as __cause__")
def job_3(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        processes = uses_processes(pool)
        raised = KeyError("refpool conform: raised in a task on purpose")
        error = error_of(
            pool.apply_async(tasks.raise_given, (raised,)), "apply_async(raise_given, (KeyError,))"
        )
        if not processes:
            require(
                error is raised, f"a ThreadPool re-raised {describe(error)}, not the task's own exception"
            )
            return
        require(
            type(error) is KeyError and error.args == raised.args,
            f"get() raised {describe(error)}, not the task's KeyError",
        )
        cause = error.__cause__
        require(cause is not None, "a task's exception came back from a worker process without a __cause__")
        require(
            "raise_given" in str(cause) and "Traceback" in str(cause),
            f"the __cause__ ({type(cause).__name__}) does not hold the worker's traceback: "
            f"{str(cause)[:100]!r}",
        )
        error = error_of(pool.map_async(tasks.fail_negative, [1, -1]), "map_async(fail_negative, [1, -1])")
        require(
            "fail_negative" in str(error.__cause__),
            "a map task's exception came back without the worker's traceback as __cause__",
        )


@clause("JOB-4", "callback/error_callback run once before get() returns")
def job_4(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        values: list[Any] = []
        job = pool.apply_async(tasks.square, (3,), callback=values.append)
        value_of(job, "apply_async(square, (3,), callback=...)")
        require(values == [9], f"when get() returned, the callback had been called with {values}, not [9]")
        errors: list[Any] = []
        job = pool.apply_async(tasks.fail_negative, (-1,), error_callback=errors.append)
        error = error_of(job, "apply_async(fail_negative, (-1,), error_callback=...)")
        require(
            len(errors) == 1 and errors[0] is error,
            f"when get() raised, the error_callback had been called with {errors}",
        )
        lists: list[Any] = []
        job = pool.map_async(tasks.square, range(10), 3, callback=lists.append)
        got = value_of(job, "map_async(square, range(10), 3, callback=...)")
        require(len(lists) == 1 and lists[0] == got, f"map_async's callback had been called with {lists}")
        _require_get_waits_for_the_callback(pool)
        time.sleep(SHORT)
        require(values == [9] and len(errors) == 1 and len(lists) == 1, "a callback ran more than once")


def _require_get_waits_for_the_callback(pool: Any) -> None:
    """While a callback runs (held here), the job is not ready and get() waits."""
    entered, release = threading.Event(), threading.Event()

    def held_callback(_: Any) -> None:
        entered.set()
        release.wait(WAIT)

    job = pool.apply_async(tasks.square, (4,), callback=held_callback)
    try:
        require(entered.wait(WAIT), "apply_async(square, (4,), callback=held): the callback never ran")
        require(not job.ready(), "ready() was True while the callback was still running")
        try:
            early = job.get(SHORT)
        except Exception as error:
            require(timed_out(error), f"get() while the callback ran raised {describe(error)}")
        else:
            raise Broken(f"get() returned {early!r} while the callback was still running")
    finally:
        release.set()  # the pool's callback thread must not stay held
    value = value_of(job, "apply_async(square, (4,), callback=held)")
    require(value == 16, f"the held job's value was {short(value)}, not 16")


@clause("JOB-7", "a callback that is not callable is refused at submission", extension=True)
def job_7(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        refusals: list[tuple[str, Callable[[], Any]]] = [
            (
                "apply_async(square, (2,), callback=5)",
                lambda: pool.apply_async(tasks.square, (2,), callback=5),
            ),
            (
                "apply_async(square, (2,), error_callback='x')",
                lambda: pool.apply_async(tasks.square, (2,), error_callback="x"),
            ),
            ("map_async(square, [1], callback=5)", lambda: pool.map_async(tasks.square, [1], callback=5)),
        ]
        for what, submit in refusals:
            step(what)
            try:
                submit()
            except TypeError:
                continue
            except Exception as wrong:
                raise Broken(f"{what} raised {describe(wrong)}, not TypeError") from None
            raise Broken(f"{what} was accepted: a callback that is not callable is not refused at submission")


class CallbackBroke(RuntimeError):
    pass


def _raising_callback(_: Any) -> None:
    raise CallbackBroke("refpool conform: this callback fails on purpose")


@clause("JOB-5", "a callback that raises fails only its own job", extension=True)
def job_5(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool, Gate() as gate:
        other = pool.apply_async(tasks.hold, (gate.task("other"),))
        gate.wait_for(["started-other"], "wait for another job to start")
        job = pool.apply_async(tasks.square, (3,), callback=_raising_callback)
        error = error_of(
            job,
            "apply_async with a callback that raises",
            "a callback raised and get() never returned (CPython gh-83371)",
        )
        require(
            isinstance(error, CallbackBroke), f"a job whose callback raised failed with {describe(error)}"
        )
        original = ValueError("the task's own error")
        job = pool.apply_async(tasks.raise_given, (original,), error_callback=_raising_callback)
        error = error_of(
            job,
            "apply_async with an error_callback that raises",
            "an error_callback raised and get() never returned (CPython gh-83371)",
        )
        require(
            isinstance(error, CallbackBroke),
            f"a job whose error_callback raised failed with {describe(error)}",
        )
        context = error.__context__
        require(
            isinstance(context, ValueError) and context.args == original.args,
            f"the error_callback's exception has __context__ {context!r}, not the task's ValueError",
        )
        job = pool.map_async(tasks.square, range(4), callback=_raising_callback)
        error = error_of(
            job,
            "map_async with a callback that raises",
            "a map callback raised and get() never returned (CPython gh-83371)",
        )
        require(
            isinstance(error, CallbackBroke), f"a map whose callback raised failed with {describe(error)}"
        )
        gate.open()
        got = value_of(other, "a job that ran while callbacks raised")
        require(got == "other", f"a job that ran while callbacks raised returned {got!r}")
        require_state(pool, RUN, "callbacks raised")
        got = value_of(pool.map_async(tasks.square, range(5)), "map_async after callbacks raised")
        require(got == [x * x for x in range(5)], f"map after callbacks raised returned {short(got)}")


@clause("JOB-6", "a map job fails as a whole with its failed chunk's exception")
def job_6(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        xs = [0, 1, 2, -3, 4, 5, 6, 7]
        for size in (1, 2, None):
            error = error_of(pool.map_async(tasks.fail_negative, xs, size), f"map_async(chunksize={size})")
            require(
                isinstance(error, ValueError) and "-3" in str(error),
                f"a map with one failing item (chunksize={size}) raised {describe(error)}",
            )
        step("map(fail_negative, xs)")
        try:
            got = within("map(fail_negative, xs)", lambda: pool.map(tasks.fail_negative, xs))
            raise Broken(f"map with a failing item returned {short(got)}")
        except ValueError as map_error:
            require("-3" in str(map_error), f"map with a failing item raised {describe(map_error)}")
        error = error_of(
            pool.starmap_async(tasks.add, [(1, 2), (1, "x"), (3, 4)], 1), "starmap_async with a failing item"
        )
        require(isinstance(error, TypeError), f"a starmap with a failing item raised {describe(error)}")
