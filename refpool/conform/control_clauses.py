"""The checks of the clauses that control a job: bounded imap (BUF), task timeouts (TIME), cancel (CANCEL).

Every one of them is a refpool extension (spec/pool.md marks them "(refpool)"):
BUF-1 and BUF-2 are the meaning of `buffersize` that CPython's pool gets in
3.16 (gh-64192), the rest is refpool's own. A pool that lacks the keyword or
the method fails the clause with a reason that says so ("imap() does not
accept buffersize=", "the result of apply_async(...) has no cancel()"), never
with a crash of the check. TIME-1 to TIME-3 need worker processes, TIME-4 a thread
pool: the other kind is SKIPped.

Registered after the clauses package's checks (runner.py and child.py import both), so
the report keeps the spec's order. The helpers are the clauses package's; nothing here
waits by sleeping where a file or a result can be awaited, except where time
passing is what the clause is about (TIME-1: time spent waiting for a worker
does not count).
"""

from __future__ import annotations

import builtins
import concurrent.futures
import functools
import gc
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import tasks
from .bounded import TimedOut, call_within
from .clauses.common import (
    SHORT,
    WAIT,
    clause,
    describe,
    error_of,
    process_pool,
    require_gives_up,
    running,
    short,
    timed_out,
    uses_processes,
    value_of,
    wait_until,
    within,
)
from .clauses.gates import Gate
from .clauses.proc import have_proc
from .clauses.states import RUN, require_state
from .registry import Broken, PoolFactory, Skip, require, step

TIMEOUT = 0.5  # seconds: the task timeout of the TIME checks' tasks that never end by themselves
SETTLE = 5.0  # seconds: how long a task held past TIMEOUT may take to fail (ten times TIMEOUT)


# --- helpers ------------------------------------------------------------------------


def accepting(keywords: str | tuple[str, ...], what: str, call: Callable[[], Any]) -> Any:
    """call(), which passes `keywords`; Broken naming the one the target does not take, if any."""
    step(what)
    try:
        return call()
    except TypeError as error:
        names = (keywords,) if isinstance(keywords, str) else keywords
        unknown = [k for k in names if f"unexpected keyword argument '{k}'" in str(error)]
        if unknown:
            method = what.partition("(")[0]
            raise Broken(
                f"{method}() does not accept {unknown[0]}= (TypeError: unexpected keyword)"
            ) from None
        raise


def open_imap(
    pool: Any, submit: str, func: Callable[[Any], Any], items: Iterable[Any], **options: Any
) -> Any:
    """pool.imap or pool.imap_unordered (`submit`) with `options` (buffersize=...); Broken if the
    target does not take one of them."""
    shown = ", ".join(f"{name}={value!r}" for name, value in options.items())
    what = f"{submit}({func.__name__}, ..., {shown})"
    call = functools.partial(getattr(pool, submit), func, items, **options)
    return accepting(tuple(options), what, call)


def take(iterator: Any, what: str, hang: str = "") -> tuple[str, Any]:
    """("value", v), ("error", e) or ("stop", None) for the builtin next(iterator), bounded by WAIT.

    Not iterator.next(timeout): what imap returns for chunksize > 1 may be a
    plain generator (it is in CPython).
    """
    step(f"{what}: next()")
    try:
        return "value", call_within(lambda: next(iterator), WAIT, f"conform: {what}")
    except TimedOut:
        raise Broken(hang or f"{what}: next() did not return within {WAIT:g} s") from None
    except StopIteration:
        return "stop", None
    except Exception as error:
        if timed_out(error):  # a target that gives up waiting by itself
            raise Broken(hang or f"{what}: next() raised {describe(error)}") from None
        return "error", error


def take_value(iterator: Any, what: str) -> Any:
    kind, value = take(iterator, what)
    if kind != "value":
        shown = describe(value) if kind == "error" else "StopIteration"
        raise Broken(f"{what}: next() raised {shown} instead of yielding a value")
    return value


def cancel_of(job: Any, what: str) -> Any:
    """job.cancel(), bounded; Broken if `job` (the result of `what`) has no cancel()."""
    cancel = getattr(job, "cancel", None)
    if not callable(cancel):
        raise Broken(f"{what} has no cancel() ({type(job).__name__})")
    return within(f"cancel() on {what}", cancel)


class Input:
    """An input whose items the check counts as the pool draws them, in whatever thread."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._items = list(items)
        self.drawn = 0  # items the pool has taken
        self.exhausted = False  # the pool asked for one more after the last, and learnt the end

    def generator(self) -> Iterator[Any]:
        for item in self._items:
            self.drawn += 1
            yield item
        self.exhausted = True


def process_gone(pid: int) -> bool:
    """Whether process `pid` has exited (a zombie counts as exited)."""
    if have_proc():
        try:
            with open(f"/proc/{pid}/stat") as stat_file:
                return stat_file.read().rpartition(")")[2].split()[0] == "Z"
        except OSError:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def runs_of(folder: str, name: str) -> list[str]:
    """The pids that tasks.note_run wrote for task `name`, one per run."""
    try:
        with open(os.path.join(folder, f"runs-{name}")) as runs:
            return runs.read().split()
    except FileNotFoundError:
        return []


def is_task_timeout(error: BaseException) -> bool:
    """TIME-3: a task's final timeout is a builtin TimeoutError, and not multiprocessing's."""
    return isinstance(error, builtins.TimeoutError) and not isinstance(error, multiprocessing.TimeoutError)


IMAPS = ("imap", "imap_unordered")


# --- BUF: bounded imap --------------------------------------------------------------


@clause(
    "BUF-1", "imap(buffersize=b) draws at most b tasks whose results the caller has not taken", extension=True
)
def buf_1(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        for submit in IMAPS:
            _draws_within_buffer(pool, submit, items=200, chunksize=4, buffersize=8)
        _draws_within_buffer(pool, "imap", items=40, chunksize=1, buffersize=2)
        _draws_nothing_while_waiting(pool)


def _draws_nothing_while_waiting(pool: Any) -> None:
    """A next(timeout) that gives up took no result, so it frees no slot: nothing more is drawn."""
    with Gate() as gate:
        source = Input([gate.task("h0")] + [gate.task(f"h{i}", wait=False) for i in range(1, 6)])
        what = "imap(hold, a generator of 6, buffersize=2)"
        results = open_imap(pool, "imap", tasks.hold, source.generator(), buffersize=2)
        gate.wait_for(["started-h0"], f"{what}: wait for its first item to start")
        step(f"{what}: next({SHORT:g}) while its first item is held")
        try:
            early = results.next(SHORT)
        except Exception as error:
            require(timed_out(error), f"{what}: next({SHORT:g}) raised {describe(error)}")
        else:
            raise Broken(f"{what}: next({SHORT:g}) returned {early!r} while its first item was held")
        require(
            source.drawn <= 2,
            f"{what} had drawn {source.drawn} items after a next({SHORT:g}) that timed out: at most 2",
        )
        gate.open()
        got = [take_value(results, f"{what}, result {k}") for k in range(6)]
        require(got == [f"h{i}" for i in range(6)], f"{what} yielded {short(got)}")


def _draws_within_buffer(pool: Any, submit: str, items: int, chunksize: int, buffersize: int) -> None:
    """Take every result, and count after each how many input items the pool has drawn."""
    source = Input(range(items))
    what = f"{submit}(square, a generator of {items}, chunksize={chunksize}, buffersize={buffersize})"
    results = open_imap(
        pool, submit, tasks.square, source.generator(), chunksize=chunksize, buffersize=buffersize
    )

    def within_bound(taken: int, when: str) -> None:
        # A slot is freed when the caller takes the first item of a chunk's result.
        chunks_taken = -(-taken // chunksize)
        limit = min(items, (chunks_taken + buffersize) * chunksize)
        require(
            source.drawn <= limit,
            f"{what} had drawn {source.drawn} items {when}: at most {limit} expected "
            f"({chunks_taken} chunks taken + buffersize {buffersize}, {chunksize} items a chunk)",
        )

    within_bound(0, "when it returned")
    got: list[int] = []
    for k in range(items):
        got.append(take_value(results, f"{what}, result {k}"))
        within_bound(k + 1, f"after the caller took {k + 1} results")
        if k == 0:
            # Time for a pool that draws ahead in a thread of its own to do it: a pool
            # that keeps the bound keeps it however long the consumer waits.
            time.sleep(SHORT)
            within_bound(1, f"while the caller waited {SHORT:g} s after taking 1 result")
    kind, extra = take(results, f"{what}, after its last result")
    require(kind == "stop", f"{what} went on after its last result: {kind} {extra!r}")
    want = [x * x for x in range(items)]
    require(
        (got if submit == "imap" else sorted(got)) == want,
        f"{what} yielded {short(got)}",
    )


@clause("BUF-2", "a buffersize not an int, or below 1, is refused with CPython's errors", extension=True)
def buf_2(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        problems: list[str] = []
        for submit in IMAPS:
            what = f"{submit}(square, [1, 2, 3], buffersize=True)"  # a bool passes, as in CPython
            results = open_imap(pool, submit, tasks.square, [1, 2, 3], buffersize=True)
            got = within(f"list({what})", functools.partial(list, results))
            if sorted(got) != [1, 4, 9]:
                problems.append(f"{what} yielded {short(got)}")
            for bad, kind, message in (
                ("8", TypeError, "buffersize must be an integer or None"),
                (1.5, TypeError, "buffersize must be an integer or None"),
                (0, ValueError, "buffersize must be None or > 0"),
                (-1, ValueError, "buffersize must be None or > 0"),
            ):
                try:
                    _refused_before_drawing(pool, submit, bad, kind, message)
                except Broken as broken:
                    problems.append(str(broken))
        require(not problems, "; ".join(problems))


def _refused_before_drawing(
    pool: Any, submit: str, bad: Any, kind: type[BaseException], message: str
) -> None:
    source = Input(range(10))
    what = f"{submit}(square, a generator, buffersize={bad!r})"
    step(what)
    try:
        results = getattr(pool, submit)(tasks.square, source.generator(), buffersize=bad)
    except kind as error:
        require(
            str(error) == message,
            f"{what} raised {type(error).__name__}({str(error)!r}), not {message!r}",
        )
        require(source.drawn == 0, f"{what} drew {source.drawn} items before it raised")
        return
    except Exception as error:
        raise Broken(f"{what} raised {describe(error)}, not {kind.__name__}") from None
    # Accepted: say what became of it.
    try:
        got = f"yielded {short(within(f'list({what})', functools.partial(list, results), WAIT / 2))}"
    except Broken as hung:
        got = str(hung)
    except Exception as error:
        got = f"failed later with {describe(error)}"
    raise Broken(f"{what} was accepted and {got}, instead of raising {kind.__name__}({message!r})")


@clause("BUF-3", "a buffered imap waiting for its consumer does not delay other jobs", extension=True)
def buf_3(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        for submit in IMAPS:
            source = Input(range(1000))
            what = f"{submit}(square, a generator of 1000, buffersize=2)"
            results = open_imap(pool, submit, tasks.square, source.generator(), buffersize=2)
            take_value(results, f"{what}, its first result")
            # The caller takes no more: the imap waits for its consumer.
            hang = (
                f"{{}} submitted while {submit}(buffersize=2) waited for its consumer never settled: "
                "the buffered imap held the pool back (CPython draws a buffered input in its one "
                "task-handler thread)"
            )
            got = value_of(
                pool.apply_async(tasks.square, (7,)),
                f"apply_async(square, (7,)) while {submit}(buffersize=2) waits",
                hang.format("apply_async(square, (7,))"),
            )
            require(got == 49, f"apply_async(square, (7,)) returned {got!r}")
            got = value_of(
                pool.map_async(tasks.square, range(20)),
                f"map_async(square, range(20)) while {submit}(buffersize=2) waits",
                hang.format("map_async(square, range(20))"),
            )
            require(got == [x * x for x in range(20)], f"map_async(square, range(20)) returned {short(got)}")
            take_value(results, f"{what}, its second result, after the other jobs")
            require(
                source.drawn <= 4,
                f"{what} drew {source.drawn} items while its caller took 2 results",
            )


@clause(
    "BUF-4",
    "close()+join() with a partly consumed buffered imap: it returns, and no input is dropped in silence",
    extension=True,
)
def buf_4(make_pool: PoolFactory) -> None:
    for submit in IMAPS:
        # The input has more than was drawn: the drawn results, then an error, then the end.
        _close_mid_input(make_pool, submit, items=100, buffersize=4, take_first=2)
        # The input has exactly what was drawn: the results, then the end, and no error.
        _close_mid_input(make_pool, submit, items=4, buffersize=4, take_first=0)


def _close_mid_input(
    make_pool: PoolFactory, submit: str, items: int, buffersize: int, take_first: int
) -> None:
    with running(make_pool(2)) as pool:
        source = Input(range(items))
        what = f"{submit}(square, a generator of {items}, buffersize={buffersize})"
        results = open_imap(pool, submit, tasks.square, source.generator(), buffersize=buffersize)
        got = [take_value(results, f"{what}, result {k}") for k in range(take_first)]
        drawn_at_close = source.drawn
        within(f"close() after taking {take_first} results of {what}", pool.close)
        within(
            f"join() after close(), with {what} partly consumed",
            pool.join,
        )
        seen: list[tuple[str, Any]] = []
        while len(seen) <= items + 1:
            kind, value = take(results, f"{what} after close() and join()")
            seen.append((kind, value))
            if kind == "stop":
                break
        kinds = [kind for kind, _ in seen]
        got += [value for kind, value in seen if kind == "value"]
        errors = [value for kind, value in seen if kind == "error"]
        prefix = f"after {take_first} results, close() and join(), {what} went on with {short(kinds)}"
        require(kinds[-1:] == ["stop"], f"{prefix}: it did not end")
        if source.exhausted:
            require(
                not errors,
                f"{prefix}: it raised {describe(errors[0]) if errors else ''} though its input had ended",
            )
        else:
            require(
                len(errors) == 1 and kinds[-2:] == ["error", "stop"],
                f"{prefix}, though its input had more: {items - source.drawn} of {items} items were "
                "never drawn and it did not raise (BUF-4: never end as if the input had ended)",
            )
        require(
            len(got) >= drawn_at_close,
            f"{prefix}: {len(got)} results, though {drawn_at_close} items had been drawn before close()",
        )
        want = [x * x for x in range(len(got))]
        require(
            (got if submit == "imap" else sorted(got)) == want,
            f"{prefix}: the results {short(got)} are not those of the first {len(got)} items",
        )


@clause("BUF-5", "after terminate() a buffered imap raises; next() never waits forever", extension=True)
def buf_5(make_pool: PoolFactory) -> None:
    buffersize = 4
    for submit in IMAPS:
        with running(make_pool(2)) as pool:
            source = Input(range(100))
            what = f"{submit}(square, a generator of 100, buffersize={buffersize})"
            results = open_imap(pool, submit, tasks.square, source.generator(), buffersize=buffersize)
            take_value(results, f"{what}, its first result")
            within(f"terminate() with {what} partly consumed", pool.terminate)
            seen: list[str] = []
            # What was delivered before terminate() may come first: at most what was drawn.
            while len(seen) <= buffersize + 1:
                kind, _ = take(
                    results,
                    f"{what} after terminate()",
                    f"after terminate(), next() on {what} waited more than {WAIT:g} s",
                )
                seen.append(kind)
                if kind == "error":
                    break
                require(
                    kind == "value",
                    f"after terminate(), {what} ended with StopIteration after {short(seen[:-1])}, "
                    "as if its input had ended, without raising",
                )
            require(seen[-1] == "error", f"after terminate(), {what} went on with {short(seen)}")


@clause(
    "BUF-6",
    "a buffered imap iterator closed or dropped is cancelled: no more draws, no more runs",
    extension=True,
)
def buf_6(make_pool: PoolFactory) -> None:
    # One worker, which runs its tasks in the order they were submitted: a job
    # submitted after the imap runs after the imap's tasks, unless those were dropped.
    with running(make_pool(1)) as pool:
        for how in ("closed", "dropped"):
            with Gate() as gate:
                source = Input(gate.task(f"{i}") for i in range(50))
                what = "imap(hold, a generator of 50, buffersize=4)"
                holder = [open_imap(pool, "imap", tasks.hold, source.generator(), buffersize=4)]
                gate.wait_for(["started-0"], f"{what}: wait for its first task to start")
                if how == "closed":
                    close = getattr(holder[0], "close", None)
                    if not callable(close):
                        raise Broken(f"the iterator of {what} has no close() ({type(holder[0]).__name__})")
                    within(f"close() on the iterator of {what}", close)
                else:
                    step(f"drop the iterator of {what}; gc.collect()")
                    holder.clear()
                    gc.collect()
                drawn = source.drawn
                gate.open()
                after = pool.apply_async(tasks.hold, (gate.task("after", wait=False),))
                value_of(
                    after,
                    f"a job submitted after the imap's iterator was {how}",
                    f"a job submitted after a buffered imap's iterator was {how} never ran",
                )
                ran = [i for i in range(1, 50) if gate.has(f"started-{i}")]
                require(
                    not ran,
                    f"after {what}'s iterator was {how} while its first task ran, its unstarted tasks "
                    f"{short(ran)} ran",
                )
                require(
                    source.drawn == drawn,
                    f"after {what}'s iterator was {how}, {source.drawn - drawn} more items were drawn",
                )


# --- TIME: per-task timeouts --------------------------------------------------------


def _timed_submits(pool: Any, timeout: Any) -> list[tuple[str, Callable[[], Any], Any, Input]]:
    """(what, submit, the value expected, its input) for the five methods that take `timeout`."""
    sources = [Input(range(6)) for _ in range(5)]
    t = f"timeout={timeout!r}"
    return [
        (
            f"apply_async(square, (3,), {t})",
            lambda: pool.apply_async(tasks.square, (3,), timeout=timeout),
            9,
            sources[0],
        ),
        (
            f"map_async(square, a generator, {t})",
            lambda: pool.map_async(tasks.square, sources[1].generator(), timeout=timeout),
            [x * x for x in range(6)],
            sources[1],
        ),
        (
            f"starmap_async(add, pairs, {t})",
            lambda: pool.starmap_async(tasks.add, ((x, x) for x in sources[2].generator()), timeout=timeout),
            [2 * x for x in range(6)],
            sources[2],
        ),
        (
            f"imap(square, a generator, {t})",
            lambda: pool.imap(tasks.square, sources[3].generator(), timeout=timeout),
            [x * x for x in range(6)],
            sources[3],
        ),
        (
            f"imap_unordered(square, a generator, {t})",
            lambda: pool.imap_unordered(tasks.square, sources[4].generator(), timeout=timeout),
            [x * x for x in range(6)],
            sources[4],
        ),
    ]


def _result_of(job: Any, what: str) -> Any:
    """The value of an apply or map job, or the sorted list an imap yields."""
    if hasattr(job, "get"):
        return value_of(job, what)
    got = within(f"list({what})", lambda: list(job))
    return got if what.startswith("imap(") else sorted(got)


@clause(
    "TIME-1",
    "timeout= on the five async methods: checked at submission; the clock starts with the task",
    extension=True,
)
def time_1(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool, Gate() as gate:
        processes = uses_processes(pool)
        problems: list[str] = []
        for limit in (None, math.inf):  # math.inf is no limit, also in a ThreadPool
            for what, submit, want, _ in _timed_submits(pool, limit):
                got = _result_of(accepting("timeout", what, submit), what)
                if got != want:
                    problems.append(f"{what} returned {short(got)}")
        for bad, kind in (("1", TypeError), (0, ValueError), (-1, ValueError), (math.nan, ValueError)):
            for what, submit, _, source in _timed_submits(pool, bad):
                try:
                    _refused(what, submit, kind, repr(bad))
                    require(source.drawn == 0, f"{what} drew {source.drawn} input items before it raised")
                except Broken as broken:
                    problems.append(str(broken))
        require(not problems, "; ".join(problems))
        if not processes:
            return  # a ThreadPool refuses a finite timeout: TIME-4
        for what, submit, want, _ in _timed_submits(pool, 5):
            got = _result_of(submit(), what)
            require(got == want, f"{what} returned {short(got)}")
        # A task running well within its limit when another timed task is handed out (the
        # moment a pool that keeps time looks again): its clock started when it did.
        what = "apply_async(hold, ..., timeout=5)"
        with Gate() as timed_gate:
            running_task = pool.apply_async(tasks.hold, (timed_gate.task("timed"),), timeout=5)
            timed_gate.wait_for(["started-timed"], f"wait for {what} to start")
            square = pool.apply_async(tasks.square, (3,), timeout=5)
            value_of(square, "apply_async(square, (3,), timeout=5)")
            timed_gate.open()
            ok, got = _outcome(running_task, what)
        require(
            ok and got == "timed",
            f"{what}, let go within a second, ended with {describe(got) if not ok else repr(got)}",
        )
        # Both workers busy: a task with a timeout waits longer than that for a worker, then runs
        # at once. Its limit is twice TIMEOUT, so that a busy machine does not make it run late.
        limit, waited = 2 * TIMEOUT, 3 * TIMEOUT
        what = f"apply_async(square, (4,), timeout={limit:g})"
        blockers = [pool.apply_async(tasks.hold, (gate.task(name),)) for name in ("a", "b")]
        gate.wait_for(["started-a", "started-b"], "wait for both workers to hold a task")
        queued = pool.apply_async(tasks.square, (4,), timeout=limit)
        step(f"let {waited:g} s pass while {what} waits for a worker")
        time.sleep(waited)  # time passing is what is checked here
        gate.open()
        ok, got = _outcome(queued, f"{what}, after waiting {waited:g} s for a worker")
        require(
            ok and got == 16,
            f"{what}, which waited {waited:g} s for a worker and then ran at once, ended with "
            f"{describe(got) if not ok else repr(got)}: the time it waited counted against its timeout",
        )
        for i, blocker in enumerate(blockers):
            value_of(blocker, f"the blocking task {i}")


def _refused(what: str, submit: Callable[[], Any], kind: type[BaseException], named: str) -> None:
    """`submit()` must raise `kind`, with a message that names the bad value."""
    step(what)
    try:
        job = submit()
    except kind as error:
        require(named in str(error), f"{what} raised {describe(error)}, which does not name {named}")
        return
    except Exception as error:
        if isinstance(error, TypeError) and "unexpected keyword argument 'timeout'" in str(error):
            raise Broken(
                f"{what.partition('(')[0]}() does not accept timeout= (TypeError: unexpected keyword)"
            ) from None
        raise Broken(f"{what} raised {describe(error)}, not {kind.__name__}") from None
    del job
    raise Broken(f"{what} was accepted, instead of raising {kind.__name__}")


def _outcome(job: Any, what: str, timeout: float = WAIT) -> tuple[bool, Any]:
    """(True, value) or (False, exception); Broken if `get(timeout)` only stopped waiting."""
    step(f"{what}: get({timeout:g})")
    try:
        return True, job.get(timeout)
    except Exception as error:
        if timed_out(error) and not job.ready():
            raise Broken(f"{what}: the job did not settle within {timeout:g} s") from None
        return False, error


@clause(
    "TIME-2",
    "a task past its timeout fails; its worker is stopped and replaced; the rest goes on",
    extension=True,
)
def time_2(make_pool: PoolFactory) -> None:
    with running(process_pool(make_pool, 1)) as pool, Gate() as gate:
        what = f"apply_async(a task that never ends, timeout={TIMEOUT:g})"
        late = accepting(
            "timeout",
            what,
            lambda: pool.apply_async(tasks.hold_then_report_pid, (gate.task("late"),), timeout=TIMEOUT),
        )
        # Queued behind it, in the one worker: they must run elsewhere, once each.
        behind = [pool.apply_async(tasks.note_run, ((gate.folder, f"behind-{i}"),)) for i in range(4)]
        victim = gate.pid_of("late")
        ok, error = _outcome(late, what, SETTLE)
        require(not ok, f"{what} returned {error!r}")
        require(
            is_task_timeout(error),
            f"{what} failed with {describe(error)}, not a builtin TimeoutError (and not "
            "multiprocessing.TimeoutError)",
        )
        require(
            f"{TIMEOUT:g}" in str(error),
            f"{what} failed with {describe(error)}, which does not name the limit",
        )
        step(f"wait for the worker {victim} that ran past its timeout to exit")
        require(
            wait_until(lambda: process_gone(victim)),
            f"the worker {victim} whose task ran past its timeout was not stopped",
        )
        for i, job in enumerate(behind):
            got = value_of(job, f"task {i} of 4 queued behind the task that ran past its timeout")
            require(got == f"behind-{i}", f"task {i} queued behind it returned {got!r}")
            runs = runs_of(gate.folder, f"behind-{i}")
            require(
                len(runs) == 1,
                f"task {i} queued behind the task that ran past its timeout ran {len(runs)} times",
            )
            require(runs[0] != str(victim), f"task {i} queued behind it ran in the stopped worker {victim}")
        fresh = value_of(pool.apply_async(tasks.pid), "apply_async(pid) after the timeout")
        require(fresh != victim, f"after the timeout, a task ran in the stopped worker {victim}")
        require_state(pool, RUN, "a task ran past its timeout")
        # A map fails as a whole; an imap yields the error in the task's place, and goes on.
        specs = [gate.task("m0", wait=False), gate.task("m1"), gate.task("m2", wait=False)]
        ok, error = _outcome(
            pool.map_async(tasks.hold, specs, 1, timeout=TIMEOUT),
            "map_async with a task past its timeout",
            SETTLE,
        )
        require(
            not ok and is_task_timeout(error),
            f"a map_async whose second task ran past its timeout ended with "
            f"{describe(error) if not ok else repr(error)}",
        )
        specs = [gate.task("i0", wait=False), gate.task("i1"), gate.task("i2", wait=False)]
        results = pool.imap(tasks.hold, specs, timeout=TIMEOUT)
        seen = [take(results, "imap with its second task past its timeout") for _ in range(4)]
        kinds = [kind for kind, _ in seen]
        require(
            kinds == ["value", "error", "value", "stop"] and is_task_timeout(seen[1][1]),
            f"an imap whose second task ran past its timeout yielded {short(seen)}",
        )


@clause(
    "TIME-3",
    "get(timeout) only stops waiting; a task's timeout is its final outcome, a builtin TimeoutError",
    extension=True,
)
def time_3(make_pool: PoolFactory) -> None:
    with running(process_pool(make_pool, 2)) as pool, Gate() as gate:
        what = "apply_async(a held task, timeout=30)"
        job = accepting(
            "timeout", what, lambda: pool.apply_async(tasks.hold, (gate.task("slow"),), timeout=30)
        )
        gate.wait_for(["started-slow"], f"{what}: wait for it to start")
        step(f"{what}: get({SHORT}) while it runs")
        require_gives_up(job.get, f"{what}: get", "while the task ran within its timeout")
        require(not job.ready(), f"{what}: ready() after get({SHORT}) gave up waiting")
        require(not gate.has("finished-slow"), f"{what}: the task was stopped by get({SHORT})")
        gate.open()
        got = value_of(job, f"{what}, waited for again")
        require(got == "slow", f"{what}, waited for again, returned {got!r}")

        with Gate() as second:
            what = f"apply_async(a task that never ends, timeout={TIMEOUT:g})"
            late = pool.apply_async(tasks.hold, (second.task("late"),), timeout=TIMEOUT)
            ok, error = _outcome(late, what, SETTLE)
            require(not ok, f"{what} returned {error!r}")
            require(
                not isinstance(error, multiprocessing.TimeoutError),
                f"{what} failed with multiprocessing.TimeoutError, which get(timeout) raises when it only "
                "stops waiting: code that waits again would wait for a task that has failed",
            )
            require(
                isinstance(error, builtins.TimeoutError),
                f"{what} failed with {describe(error)}, not a builtin TimeoutError",
            )
            require(late.ready(), f"{what}: not ready() after it failed")
            ok, again = _outcome(late, f"{what}, waited for again")
            require(
                not ok and type(again) is type(error),
                f"{what}, waited for again, ended with {describe(again) if not ok else repr(again)}",
            )


@clause("TIME-4", "a ThreadPool refuses a timeout with ValueError at submission", extension=True)
def time_4(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool:
        if uses_processes(pool):
            raise Skip("about thread pools; this target's workers are processes (TIME-2 applies)")
        what = "apply_async(square, (3,), timeout=None)"
        job = accepting("timeout", what, lambda: pool.apply_async(tasks.square, (3,), timeout=None))
        got = value_of(job, what)
        require(got == 9, f"{what} returned {got!r}")
        problems: list[str] = []
        for what, submit, _, source in _timed_submits(pool, 5):
            try:
                _refused(what, submit, ValueError, "")
                require(source.drawn == 0, f"{what} drew {source.drawn} input items before it raised")
            except Broken as broken:
                problems.append(str(broken))
        require(not problems, "; ".join(problems))


# --- CANCEL: cancelling a job -------------------------------------------------------


def _is_cancelled(error: Any) -> bool:
    return isinstance(error, concurrent.futures.CancelledError)


@clause("CANCEL-1", "cancel() settles the job at once; its unstarted tasks never run", extension=True)
def cancel_1(make_pool: PoolFactory) -> None:
    # One worker, held: every task submitted behind it waits, unstarted.
    with running(make_pool(1)) as pool, Gate() as gate:
        blocker = pool.apply_async(tasks.hold, (gate.task("blocker"),))
        gate.wait_for(["started-blocker"], "wait for the one worker to hold a task")
        # Each submitted and cancelled in turn: a pool without cancel() is told so before it holds
        # an imap (billiard's result handler crashes the process when terminated with one pending).
        submits: list[tuple[str, Callable[[], Any]]] = [
            (
                "apply_async(hold, ...)",
                lambda: pool.apply_async(tasks.hold, (gate.task("apply", wait=False),)),
            ),
            (
                "map_async(hold, 6 items, 1)",
                lambda: pool.map_async(tasks.hold, [gate.task(f"map-{i}", wait=False) for i in range(6)], 1),
            ),
            (
                "starmap_async(note_run, 6 items, 1)",
                lambda: pool.starmap_async(
                    tasks.note_run, [((gate.folder, f"starmap-{i}"),) for i in range(6)], 1
                ),
            ),
            (
                "imap(hold, 6 items)",
                lambda: pool.imap(tasks.hold, [gate.task(f"imap-{i}", wait=False) for i in range(6)]),
            ),
            (
                "imap_unordered(hold, a generator)",
                lambda: pool.imap_unordered(
                    tasks.hold, (gate.task(f"unordered-{i}", wait=False) for i in range(6))
                ),
            ),
        ]
        for what, submit in submits:
            step(what)
            job = submit()
            cancelled = cancel_of(job, f"the result of {what}")
            require(cancelled is True, f"cancel() on {what}, not started, returned {cancelled!r}, not True")
            hang = f"a cancelled {what} did not settle while the worker was busy (it must at once)"
            if hasattr(job, "get"):
                error = error_of(job, f"a cancelled {what}", hang)
            else:
                kind, error = take(job, f"a cancelled {what}", hang)
                require(kind == "error", f"a cancelled {what} gave {kind} {error!r}, not an error")
            require(
                _is_cancelled(error), f"a cancelled {what} raised {describe(error)}, not a CancelledError"
            )
        # A running task runs to its end; its job settles at once.
        cancelled = cancel_of(blocker, "the result of a running apply_async")
        require(cancelled is True, f"cancel() on a running job returned {cancelled!r}, not True")
        error = error_of(blocker, "a cancelled running job", "a cancelled running job did not settle at once")
        require(
            _is_cancelled(error), f"a cancelled running job raised {describe(error)}, not a CancelledError"
        )
        gate.open()
        gate.wait_for(
            ["finished-blocker"], "the cancelled running task runs to its end (its worker is not stopped)"
        )
        after = pool.apply_async(tasks.hold, (gate.task("after", wait=False),))
        value_of(
            after,
            "a job submitted after the cancelled ones",
            "a job submitted after cancelled ones never ran",
        )
        entries = os.listdir(gate.folder)
        ran = sorted(e.partition("-")[2] for e in entries if e.startswith(("started-", "runs-")))
        ran = [name for name in ran if name not in ("blocker", "after")]
        require(not ran, f"tasks of cancelled jobs ran: {short(ran)}")
        for what, job in (("a job that succeeded", after), ("a job cancelled already", blocker)):
            again = cancel_of(job, what)
            require(again is False, f"cancel() on {what} returned {again!r}, not False")


@clause(
    "CANCEL-2",
    "a cancelled job's error_callback runs once, in the pool's thread; imap raises once, then stops",
    extension=True,
)
def cancel_2(make_pool: PoolFactory) -> None:
    with running(make_pool(1)) as pool, Gate() as gate:
        blocker = pool.apply_async(tasks.hold, (gate.task("blocker"),))
        gate.wait_for(["started-blocker"], "wait for the one worker to hold a task")
        records: list[tuple[str, list[tuple[str, Any, threading.Thread]]]] = []
        for what in ("apply_async(square, (3,), ...)", "map_async(square, [1, 2, 3], ...)"):
            calls: list[tuple[str, Any, threading.Thread]] = []

            def on_value(value: Any, calls: list[tuple[str, Any, threading.Thread]] = calls) -> None:
                calls.append(("callback", value, threading.current_thread()))

            def on_error(error: Any, calls: list[tuple[str, Any, threading.Thread]] = calls) -> None:
                calls.append(("error_callback", error, threading.current_thread()))

            if what.startswith("apply"):
                job = pool.apply_async(tasks.square, (3,), callback=on_value, error_callback=on_error)
            else:
                job = pool.map_async(tasks.square, [1, 2, 3], callback=on_value, error_callback=on_error)
            cancelling: list[threading.Thread] = []

            def cancel(
                job: Any = job, cancelling: list[threading.Thread] = cancelling, what: str = what
            ) -> Any:
                cancelling.append(threading.current_thread())
                method = getattr(job, "cancel", None)
                if not callable(method):
                    raise Broken(f"the result of {what} has no cancel() ({type(job).__name__})")
                return method()

            require(within(f"cancel() on {what}", cancel) is True, f"cancel() on {what} did not return True")
            error = error_of(job, f"a cancelled {what}", f"a cancelled {what} did not settle")
            kinds = [kind for kind, _, _ in calls]
            require(
                kinds == ["error_callback"],
                f"when get() on a cancelled {what} raised, the callbacks run were {kinds}",
            )
            _, received, thread = calls[0]
            require(
                received is error,
                f"the error_callback of a cancelled {what} received {received!r}, not what get() raises",
            )
            require(
                thread is not cancelling[0],
                f"the error_callback of a cancelled {what} ran in the thread that called cancel(), "
                "not where the pool runs its callbacks",
            )
            records.append((what, calls))
        gate.open()
        value_of(blocker, "the job that held the worker")
        value_of(pool.apply_async(tasks.square, (2,)), "a job after the cancelled ones")
        for what, calls in records:
            kinds = [kind for kind, _, _ in calls]
            require(
                kinds == ["error_callback"],
                f"once the pool was free, the callbacks of a cancelled {what} were {kinds}",
            )

        # imap: the results not yet taken are dropped; next() raises once, then stops.
        with Gate() as second:
            specs = [second.task("a", wait=False), second.task("b", wait=False), second.task("c")]
            results = pool.imap(tasks.hold, specs)
            got = take_value(results, "imap(hold, [a, b, c held])")
            require(got == "a", f"imap(hold, [a, b, c held]) first yielded {got!r}")
            second.wait_for(["finished-b", "started-c"], "wait for b to finish and c to start")
            cancelled = cancel_of(results, "an imap iterator")
            require(cancelled is True, f"cancel() on an unfinished imap returned {cancelled!r}, not True")
            seen = [take(results, "a cancelled imap") for _ in range(3)]
            kinds = [kind for kind, _ in seen]
            require(
                kinds == ["error", "stop", "stop"] and _is_cancelled(seen[0][1]),
                f"after cancel(), with b's result not taken, imap gave {short(seen)}, not a CancelledError "
                "and then the end",
            )


@clause(
    "CANCEL-3",
    "cancelling changes nothing else: state, workers, the other jobs' tasks run once",
    extension=True,
)
def cancel_3(make_pool: PoolFactory) -> None:
    with running(make_pool(1)) as pool, Gate() as gate:
        worker = value_of(pool.apply_async(tasks.identity), "apply_async(identity) before")
        blocker = pool.apply_async(tasks.hold, (gate.task("blocker"),))
        gate.wait_for(["started-blocker"], "wait for the one worker to hold a task")
        folder = gate.folder
        before = [pool.apply_async(tasks.note_run, ((folder, f"a{i}"),)) for i in range(3)]
        victim = pool.map_async(tasks.note_run, [(folder, f"v{i}") for i in range(6)], 1)
        behind = [pool.apply_async(tasks.note_run, ((folder, f"b{i}"),)) for i in range(3)]
        cancelled = cancel_of(victim, "the result of map_async(note_run, 6 items, 1)")
        require(cancelled is True, f"cancel() on a map not started returned {cancelled!r}, not True")
        gate.open()
        value_of(blocker, "the job that held the worker")
        others = [(f"a{i}", job) for i, job in enumerate(before)] + [
            (f"b{i}", job) for i, job in enumerate(behind)
        ]
        for name, job in others:
            got = value_of(
                job,
                f"job {name}, queued beside the cancelled one",
                f"job {name}, queued beside a cancelled job, never ran",
            )
            require(got == name, f"job {name} returned {got!r}")
        counts = {name: len(runs_of(folder, name)) for name, _ in others}
        wrong = {name: n for name, n in counts.items() if n != 1}
        require(not wrong, f"jobs queued beside a cancelled one ran other than once: {wrong}")
        ran = [f"v{i}" for i in range(6) if runs_of(folder, f"v{i}")]
        require(not ran, f"tasks of the cancelled map ran: {ran}")
        again = value_of(pool.apply_async(tasks.identity), "apply_async(identity) after")
        require(
            again == worker,
            f"the pool's one worker was {worker}, and after cancel() it is {again}: it was replaced",
        )
        require_state(pool, RUN, "cancel() and the jobs beside it")
