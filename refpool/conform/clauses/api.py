"""The checks of the API clauses: the methods, their arguments and the constructor."""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.pool
import os
import pickle
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .. import tasks
from ..registry import Broken, PoolFactory, Skip, require, step
from .common import (
    POLL,
    READ_AHEAD,
    SHORT,
    WORKER_HOLDS,
    clause,
    describe,
    next_of,
    process_pool,
    raises,
    require_gives_up,
    running,
    short,
    stop,
    timed_out,
    value_of,
    wait_until,
    within,
)
from .gates import Gate


@clause("API-1", "apply and apply_async return f(*args, **kwds)")
def api_1(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        got = within("apply(add, (2, 3))", lambda: pool.apply(tasks.add, (2, 3)))
        require(got == 5, f"apply(add, (2, 3)) returned {got!r}, not 5")
        got = within("apply(add, (), {'a': 1, 'b': 2})", lambda: pool.apply(tasks.add, (), {"a": 1, "b": 2}))
        require(got == 3, f"apply with kwds returned {got!r}, not 3")
        got = value_of(pool.apply_async(tasks.add, (), {"a": 1, "b": 2}), "apply_async(add, (), kwds)")
        require(got == 3, f"apply_async with kwds returned {got!r}, not 3")
        got = value_of(pool.apply_async(tasks.add, (4,), {"b": 5}), "apply_async(add, (4,), {'b': 5})")
        require(got == 9, f"apply_async with args and kwds returned {got!r}, not 9")


@clause("API-2", "map and starmap return every result in input order; the input is read in the caller")
def api_2(make_pool: PoolFactory) -> None:
    with running(make_pool(3)) as pool:
        xs = list(range(100))
        got = within("map(square, range(100))", lambda: pool.map(tasks.square, xs))
        require(got == [x * x for x in xs], f"map(square, range(100)) returned {short(got)}")
        got = within("map(square, range(100), 7)", lambda: pool.map(tasks.square, xs, 7))
        require(got == [x * x for x in xs], f"map(square, range(100), chunksize=7) returned {short(got)}")
        pairs = [(x, 2 * x) for x in range(50)]
        got = within("starmap(add, pairs)", lambda: pool.starmap(tasks.add, pairs))
        require(got == [3 * x for x in range(50)], f"starmap(add, pairs) returned {short(got)}")
        got = value_of(pool.map_async(tasks.square, iter(xs)), "map_async(square, iter(range(100)))")
        require(got == [x * x for x in xs], f"map_async over an iterator returned {short(got)}")
        got = value_of(pool.starmap_async(tasks.add, pairs), "starmap_async(add, pairs)")
        require(got == [3 * x for x in range(50)], f"starmap_async returned {short(got)}")
        require(within("map(square, [])", lambda: pool.map(tasks.square, [])) == [], "map over [] is not []")
        got = value_of(pool.map_async(tasks.square, []), "map_async(square, [])")
        require(got == [], f"map_async over [] returned {got!r}")
        got = within("starmap(add, [])", lambda: pool.starmap(tasks.add, []))
        require(got == [], f"starmap over [] returned {got!r}")

        readers: list[threading.Thread] = []

        def numbers() -> Iterator[int]:
            for i in range(20):
                readers.append(threading.current_thread())
                yield i

        step("map_async(square, a generator): is it read whole, before map_async returns?")
        caller = threading.current_thread()
        job = pool.map_async(tasks.square, numbers())
        require(len(readers) == 20, f"map_async returned having read {len(readers)} of 20 input items")
        require(all(r is caller for r in readers), "map_async read its input in another thread")
        value_of(job, "map_async(square, a generator)")


def _chunks_seen(pool: Any, submit: str, n: int, chunksize: int | None) -> list[int]:
    """Which items did not start while item 0 held the one other worker: the rest of its chunk."""
    with Gate() as gate:
        specs = [gate.task(str(i), wait=(i == 0)) for i in range(n)]
        step(f"{submit} of {n} items with item 0 held (chunksize={chunksize})")
        if submit == "map_async":
            job: Any = pool.map_async(tasks.hold, specs, chunksize)
        else:
            job = getattr(pool, submit)(tasks.hold, specs)
        # All items outside item 0's chunk run on the other worker.
        gate.wait_for(["started-0"], f"{submit}: wait for item 0 to start")
        wait_until(lambda: sum(gate.has(f"finished-{i}") for i in range(1, n)) >= 1)
        # Wait until the other worker has nothing left to do: the count stops growing.
        last, stable_since = -1, time.monotonic()
        while time.monotonic() - stable_since < SHORT:
            count = sum(gate.has(f"finished-{i}") for i in range(1, n))
            if count != last:
                last, stable_since = count, time.monotonic()
            time.sleep(POLL)
        waiting = [i for i in range(1, n) if not gate.has(f"started-{i}")]
        gate.open()
        if submit == "map_async":
            value_of(job, f"{submit} after the gate opened")
        else:
            for _ in range(n):
                next_of(job, f"{submit} after the gate opened")
        return waiting


@clause("API-3", "default chunksizes; imap refuses a chunksize below 1")
def api_3(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        # ceil(25 / (4 * 2)) = 4: items 1 to 3 share item 0's chunk, and wait behind it. Not a
        # multiple of 8, so that a chunksize rounded down (3) is seen.
        waiting = _chunks_seen(pool, "map_async", 25, None)
        require(
            waiting == [1, 2, 3],
            f"map of 25 items on 2 workers: items {waiting} waited behind item 0, not [1, 2, 3] "
            f"(default chunksize 4)",
        )
        for submit in ("imap", "imap_unordered"):
            waiting = _chunks_seen(pool, submit, 6, None)
            require(not waiting, f"{submit}: items {waiting} waited behind item 0 (default chunksize is 1)")
        problems: list[str] = []
        for submit in ("imap", "imap_unordered"):
            for bad in (0, -1):
                try:
                    raises(
                        functools.partial(getattr(pool, submit), tasks.square, [1, 2], bad),
                        ValueError,
                        f"{submit}(square, [1, 2], chunksize={bad})",
                        f"Chunksize must be 1+, not {bad}",
                    )
                except Broken as broken:
                    problems.append(str(broken))
        require(not problems, "; ".join(problems))


@clause("API-11", "map refuses a chunksize below 1; a chunksize not an int is refused", extension=True)
def api_11(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        problems: list[str] = []
        for bad_type in ("2", 1.5):
            for submit in ("map_async", "imap"):
                try:
                    _refused_at_submission(pool, submit, bad_type, TypeError)
                except Broken as broken:
                    problems.append(str(broken))
        for bad in (0, -1):
            try:
                _refused_at_submission(pool, "map_async", bad, ValueError, f"Chunksize must be 1+, not {bad}")
            except Broken as broken:
                problems.append(str(broken) + " (CPython returns Nones)")
        require(not problems, "; ".join(problems))


def _refused_at_submission(
    pool: Any, submit: str, chunksize: Any, kind: type[BaseException], message: str | None = None
) -> None:
    what = f"{submit}(square, [1, 2], chunksize={chunksize!r})"
    step(what)
    try:
        job = getattr(pool, submit)(tasks.square, [1, 2], chunksize)
    except kind as error:
        if message is not None and str(error) != message:
            raise Broken(f"{what} raised {type(error).__name__}({str(error)!r}), not {message!r}") from None
        return
    except Exception as error:
        raise Broken(f"{what} raised {describe(error)}, not {kind.__name__}") from None
    # Accepted: say what became of it.
    try:
        result = job.get(1) if submit == "map_async" else list(job)
        got = f"returned {short(result)}"
    except Exception as error:
        got = "never settled" if timed_out(error) else f"failed later with {describe(error)}"
    raise Broken(f"{what} was accepted and {got}, instead of raising {kind.__name__}")


@clause("API-4", "imap yields in input order, imap_unordered in finishing order; both have next(timeout)")
def api_4(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        got = within("list(imap(square, range(50)))", lambda: list(pool.imap(tasks.square, range(50))))
        require(got == [x * x for x in range(50)], f"imap(square, range(50)) yielded {short(got)}")
        got = within("list(imap(square, range(50), 4))", lambda: list(pool.imap(tasks.square, range(50), 4)))
        require(got == [x * x for x in range(50)], f"imap(square, range(50), 4) yielded {short(got)}")
        got = within(
            "sorted(imap_unordered(square, range(50)))",
            lambda: sorted(pool.imap_unordered(tasks.square, range(50))),
        )
        require(got == sorted(x * x for x in range(50)), f"imap_unordered yielded {short(got)}")

        # imap_unordered: "b" finishes while "a" is held, so it comes first.
        with Gate() as gate:
            unordered = pool.imap_unordered(tasks.hold, [gate.task("ua"), gate.task("ub", wait=False)])
            kind, first = next_of(
                unordered,
                "imap_unordered while its first item is held",
                "imap_unordered yielded nothing while its second item had finished",
            )
            require(
                (kind, first) == ("value", "ub"), f"imap_unordered first yielded {kind} {first!r}, not 'ub'"
            )
            gate.open()
            kind, second = next_of(unordered, "imap_unordered after the gate opened")
            require((kind, second) == ("value", "ua"), f"imap_unordered then yielded {kind} {second!r}")
            kind, _ = next_of(unordered, "imap_unordered at its end")
            require(kind == "stop", f"imap_unordered went on after its last item ({kind})")

        with Gate() as gate:
            ordered = pool.imap(tasks.hold, [gate.task("a"), gate.task("b", wait=False)])
            gate.wait_for(["finished-b"], "imap: wait for the second item to finish")
            step(f"imap.next({SHORT}) while its first item is held")
            require_gives_up(ordered.next, "imap.next", "while its first item was held")
            gate.open()
            got = [next_of(ordered, "imap after the gate opened") for _ in range(3)]
            require(
                got == [("value", "a"), ("value", "b"), ("stop", None)],
                f"imap yielded {got}, not a, b, then the end",
            )


@clause("API-5", "imap reads its input only as workers take tasks", extension=True)
def api_5(make_pool: PoolFactory) -> None:
    processes = 2
    with running(make_pool(processes)) as pool:
        for submit in ("imap", "imap_unordered"):
            with Gate() as gate:
                read = [0]

                def items(gate: Gate = gate, read: list[int] = read) -> Iterator[tuple[str, str, bool]]:
                    for i in range(200):
                        read[0] += 1
                        yield gate.task(str(i))

                results = getattr(pool, submit)(tasks.hold, items())
                gate.wait_for(["started-0", "started-1"], f"{submit}: wait for both workers to take a task")
                time.sleep(SHORT)
                ahead = read[0]
                gate.open()
                step(f"{submit}: consume the 200 results")
                for _ in range(200):
                    next_of(results, f"{submit} after the gate opened")
                limit = READ_AHEAD + WORKER_HOLDS * processes  # spec API-5
                require(
                    ahead <= limit,
                    f"{submit} read {ahead} of 200 input items while {processes} workers held a task each "
                    f"(at most {limit} expected; CPython reads the whole input first)",
                )


class InputBroke(LookupError):
    pass


@clause("API-6", "an imap input that raises: the results before it, then its exception, then the end")
def api_6(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        for submit in ("imap", "imap_unordered"):

            def items() -> Iterator[int]:
                yield from range(3)
                raise LookupError("refpool conform: the input broke after 3 items")

            results = getattr(pool, submit)(tasks.square, items())
            seen = [next_of(results, f"{submit} over an input that raises after 3 items") for _ in range(4)]
            values = sorted(v for kind, v in seen if kind == "value")
            errors = [v for kind, v in seen if kind == "error"]
            require(values == [0, 1, 4], f"{submit} over a raising input yielded {seen}")
            require(
                len(errors) == 1 and isinstance(errors[0], LookupError) and "broke" in str(errors[0]),
                f"{submit} over a raising input yielded {seen}, not the input's LookupError",
            )
            if submit == "imap":
                require(seen[3][0] == "error", f"imap yielded the input's error out of order: {seen}")
            kind, extra = next_of(results, f"{submit} after the input's exception")
            require(kind == "stop", f"{submit} went on after the input's exception: {kind} {extra!r}")


@clause("API-7", "constructor checks, with CPython's messages")
def api_7(make_pool: PoolFactory) -> None:
    problems: list[str] = []

    def refuses(
        construct: Callable[[], Any], kind: type[BaseException], what: str, message: str | None = None
    ) -> BaseException | None:
        try:
            return _refuses(construct, kind, what, message)
        except Broken as broken:
            problems.append(str(broken))
            return None

    refuses(
        functools.partial(make_pool, 0), ValueError, "make_pool(0)", "Number of processes must be at least 1"
    )
    refuses(
        functools.partial(make_pool, -1),
        ValueError,
        "make_pool(-1)",
        "Number of processes must be at least 1",
    )
    refuses(
        functools.partial(make_pool, 1, initializer=5),
        TypeError,
        "make_pool(1, initializer=5)",
        "initializer must be a callable",
    )
    # A ThreadPool takes no maxtasksperchild: a pool made with a good one tells which kind this is.
    try:
        with running(process_pool(make_pool, 1, maxtasksperchild=1)):
            processes_pool = True
    except Skip:
        processes_pool = False
    except Broken as broken:
        problems.append(str(broken))
        processes_pool = False
    if processes_pool:
        for bad in (0, -1, "2", 1.5):
            refuses(
                functools.partial(make_pool, 1, maxtasksperchild=bad),
                ValueError,
                f"make_pool(1, maxtasksperchild={bad!r})",
                "maxtasksperchild must be a positive int or None",
            )
    require(not problems, "; ".join(problems))


@clause("API-12", "a non-int processes is refused by name; processes=None is the usable CPUs", extension=True)
def api_12(make_pool: PoolFactory) -> None:
    problems: list[str] = []
    for bad in ("2", 2.5):
        try:
            error = _refuses(functools.partial(make_pool, bad), TypeError, f"make_pool({bad!r})", None)
        except Broken as broken:
            problems.append(str(broken))
            continue
        if error is not None and repr(bad) not in str(error) and str(bad) not in str(error):
            problems.append(
                f"make_pool({bad!r}) raised TypeError({str(error)!r}), which does not name {bad!r}"
            )
    if hasattr(os, "sched_setaffinity"):
        try:
            _check_usable_cpus(make_pool)
        except Broken as broken:
            problems.append(str(broken))
    require(not problems, "; ".join(problems))


def _check_usable_cpus(make_pool: PoolFactory) -> None:
    """make_pool(None) in this check's process, allowed fewer CPUs than the machine has."""
    usable = os.sched_getaffinity(0)
    if len(usable) > 1:
        os.sched_setaffinity(0, {min(usable)})
    try:
        expected = len(os.sched_getaffinity(0))
        step("make_pool(None)")
        with running(make_pool(None)) as pool:
            found = re.search(r"pool_size=(\d+)", repr(pool))
            size = int(found.group(1)) if found else None
            require(
                size == expected,
                f"make_pool(None) in a process that may use {expected} of {os.cpu_count()} CPUs "
                f"has pool_size={size}",
            )
    finally:
        os.sched_setaffinity(0, usable)


def _refuses(
    construct: Callable[[], Any], kind: type[BaseException], what: str, message: str | None = None
) -> BaseException:
    step(what)
    try:
        pool = construct()
    except kind as error:
        if message is not None and str(error) != message:
            raise Broken(f"{what} raised {type(error).__name__}({str(error)!r}), not {message!r}") from None
        return error
    except Exception as error:
        raise Broken(f"{what} raised {describe(error)}, not {kind.__name__}") from None
    stop(pool)
    raise Broken(f"{what} made a pool instead of raising {kind.__name__}")


@clause("API-8", "initializer(*initargs) runs once in each worker before its first task")
def api_8(make_pool: PoolFactory) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="refpool-conform-") as folder,
        running(make_pool(2, initializer=tasks.record_init, initargs=(folder, "tag"))) as pool,
    ):
        # Two tasks that wait for each other run in two workers at once.
        jobs = [pool.apply_async(tasks.meet, ((folder, name, 2),)) for name in ("a", "b")]
        seen = [value_of(job, f"task {i} of two that meet") for i, job in enumerate(jobs)]
        seen += value_of(pool.map_async(tasks.initialized, [folder] * 20, 1), "map(initialized, ...)")
        for worker, records in seen:
            require(
                records == ["tag"],
                f"a task in worker {worker} found its initializer's records {records}, not ['tag'] once",
            )
        workers = {worker for worker, _ in seen}
        require(len(workers) == 2, f"two tasks that wait for each other ran in {len(workers)} worker(s)")
        inits = [entry for entry in os.listdir(folder) if entry.startswith("init-")]
        require(len(inits) == 2, f"a pool of 2 workers ran its initializer in {len(inits)} workers")


@clause("API-9", "repr(pool) is <module.Class state=STATE pool_size=N>; pickling a pool raises")
def api_9(make_pool: PoolFactory) -> None:
    with running(make_pool(3)) as pool:
        cls = type(pool)
        expected = f"<{cls.__module__}.{cls.__qualname__} state=RUN pool_size=3>"
        require(repr(pool) == expected, f"repr(pool) is {repr(pool)!r}, not {expected!r}")
        step("pickle.dumps(pool)")
        try:
            pickle.dumps(pool)
        except NotImplementedError:
            pass
        except Exception as error:
            raise Broken(f"pickling a pool raised {describe(error)}, not NotImplementedError") from None
        else:
            raise Broken("a pool could be pickled")
        pool.close()
        expected = f"<{cls.__module__}.{cls.__qualname__} state=CLOSE pool_size=3>"
        require(repr(pool) == expected, f"repr(pool) after close() is {repr(pool)!r}, not {expected!r}")
        pool.terminate()
        expected = f"<{cls.__module__}.{cls.__qualname__} state=TERMINATE pool_size=3>"
        require(repr(pool) == expected, f"repr(pool) after terminate() is {repr(pool)!r}, not {expected!r}")


@clause("API-10", "context= takes a multiprocessing context: fork, spawn and forkserver work")
def api_10(make_pool: PoolFactory) -> None:
    tasks.MARK = "set in the parent"
    for method in multiprocessing.get_all_start_methods():
        step(f"make_pool(2, context=get_context({method!r}))")
        with running(process_pool(make_pool, 2, context=multiprocessing.get_context(method))) as pool:
            got = value_of(
                pool.map_async(tasks.square, range(10)), f"map in a pool with the {method} context"
            )
            require(got == [x * x for x in range(10)], f"map with context {method} returned {short(got)}")
            marked = value_of(pool.apply_async(tasks.mark), f"apply_async(mark) with the {method} context")
            forked = marked == tasks.MARK
            require(
                forked == (method == "fork"),
                f"with context={method}, a worker {'was' if forked else 'was not'} forked from the parent",
            )
