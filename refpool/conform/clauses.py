"""One check per spec clause that the public Pool API can show (spec/pool.md).

Each check gets `make_pool(processes, **options)`, the target's constructor,
and either returns (the clause holds), raises Broken("reason") (it does not)
or Skip("reason") (it does not apply). Every blocking call has a timeout, so
that a check reports FAIL where it can; the runner's deadline catches the rest
as HANG. Each check closes what it opens, but runs in a process of its own.

The checks use only the public API: `repr(pool)` for the state, files for
tasks that must wait (Gate), and /proc for the worker processes. Clauses about
the pool's insides (LIFE-2's INIT rows, WORK-2, WORK-3, WORK-6, WORK-7, SHUT-1,
SHUT-2, SHUT-3) have no check of their own; their consequences are checked by
WORK-1, WORK-4, WORK-5, LOST-1, LOST-3, SHUT-4 and SHUT-6.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import multiprocessing
import multiprocessing.pool
import os
import pickle
import re
import shutil
import signal
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from . import tasks
from .bounded import TimedOut, call_within
from .registry import Broken, PoolFactory, Skip, check, require, step

READ_AHEAD = 65  # API-5: the tasks imap may read beyond those that workers hold...
WORKER_HOLDS = 8  # ...and the most a worker may hold (WORK-3)
WAIT = 10.0  # seconds: a bound on each blocking call; a conforming pool answers in milliseconds
SHORT = 0.3  # seconds: how long a check waits for something that must NOT happen
CLEANUP = 3.0  # seconds: how long cleanup waits for terminate(); the check's leftovers are killed after
POLL = 0.01


# --- helpers ------------------------------------------------------------------------


def within(what: str, call: Callable[[], Any], timeout: float = WAIT) -> Any:
    """call() in a daemon thread; Broken if it has not returned after `timeout` (it may block forever)."""
    step(what)
    try:
        return call_within(call, timeout, f"conform: {what}")
    except TimedOut:
        raise Broken(f"{what} did not return within {timeout:g} s") from None


def outcome(job: Any, what: str, hang: str = "", timeout: float = WAIT) -> tuple[bool, Any]:
    """(True, value) or (False, exception) of `job`; Broken if it has not settled within `timeout`."""
    step(f"{what}: get({timeout:g})")
    try:
        return True, job.get(timeout)
    except Exception as error:
        if timed_out(error):
            raise Broken(hang or f"{what}: the job did not settle within {timeout:g} s") from None
        return False, error


def timed_out(error: BaseException) -> bool:
    """Whether get(timeout) or next(timeout) gave up: multiprocessing's TimeoutError, or that
    of a fork of it (multiprocess, billiard), which is another class; never the builtin
    TimeoutError, which a task may raise."""
    kind = type(error)
    return isinstance(error, multiprocessing.TimeoutError) or (
        kind.__name__ == "TimeoutError" and kind.__module__ != "builtins"
    )


def value_of(job: Any, what: str, hang: str = "") -> Any:
    """The job's value; Broken if it failed or did not settle."""
    ok, value = outcome(job, what, hang)
    if not ok:
        raise Broken(f"{what} raised {describe(value)}")
    return value


def error_of(job: Any, what: str, hang: str = "", timeout: float = WAIT) -> BaseException:
    """The job's exception; Broken if it succeeded or did not settle."""
    ok, value = outcome(job, what, hang, timeout)
    if ok:
        raise Broken(f"{what} returned {value!r} instead of raising")
    error: BaseException = value
    return error


def next_of(iterator: Any, what: str, hang: str = "") -> tuple[str, Any]:
    """("value", v), ("error", e) or ("stop", None) for iterator.next(WAIT); Broken on timeout."""
    step(f"{what}: next({WAIT:g})")
    try:
        return "value", iterator.next(WAIT)
    except StopIteration:
        return "stop", None
    except Exception as error:
        if timed_out(error):
            raise Broken(hang or f"{what}: next({WAIT:g}) timed out") from None
        return "error", error


def describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}({text[0][:120]!r})" if text else type(error).__name__


def raises(call: Callable[[], Any], kind: type[BaseException], what: str, message: str | None = None) -> None:
    """`call()` must raise `kind`, with exactly `message` if given."""
    try:
        result = within(what, call)
    except kind as error:
        if message is not None and str(error) != message:
            raise Broken(f"{what} raised {type(error).__name__}({str(error)!r}), not {message!r}") from None
        return
    except Broken:
        raise
    except Exception as error:
        raise Broken(f"{what} raised {describe(error)}, not {kind.__name__}") from None
    raise Broken(f"{what} returned {type(result).__name__} instead of raising {kind.__name__}")


def state_of(pool: Any) -> str:
    found = re.search(r"\bstate=(\w+)", repr(pool))
    return found.group(1) if found else f"(no state= in {repr(pool)!r})"


def require_state(pool: Any, expected: str, when: str) -> None:
    state = state_of(pool)
    require(state == expected, f"{when}, repr(pool) shows state={state}, not {expected}")


def stop(pool: Any) -> None:
    """Cleanup in `finally`: terminate, without letting a target that blocks or raises there stop us."""
    if pool is None:
        return

    def terminate() -> None:
        with contextlib.suppress(Exception):
            pool.terminate()

    thread = threading.Thread(target=terminate, name="conform: cleanup", daemon=True)
    thread.start()
    thread.join(CLEANUP)


def clause(
    clause_id: str, title: str, *, extension: bool = False
) -> Callable[[Callable[[PoolFactory], None]], Callable[[PoolFactory], None]]:
    """Register a check, which ends every process it left behind when it returns.

    A pool that failed to terminate leaves workers that hold the check's stdout
    and stderr open, and may outlive the check (forkserver workers are not
    even its children); they are killed here, whatever the check's verdict.
    """

    def register(run: Callable[[PoolFactory], None]) -> Callable[[PoolFactory], None]:
        @functools.wraps(run)
        def run_then_reap(make_pool: PoolFactory) -> None:
            try:
                run(make_pool)
            finally:
                kill_descendants()

        check(clause_id, title, extension=extension)(run_then_reap)
        return run

    return register


def uses_processes(pool: Any) -> bool:
    """Whether the pool's workers are processes (a task there has another pid than ours)."""
    worker = value_of(pool.apply_async(tasks.pid), "apply_async(pid) to see what a worker is")
    return bool(worker != os.getpid())


def process_pool(make_pool: PoolFactory, processes: int, **options: Any) -> Any:
    """A pool of `processes` workers with `options`; Skip if the target's workers are threads.

    A probe pool is made first, without options: a ThreadPool does not accept
    maxtasksperchild or context, and os._exit in a thread would end the check.
    """
    probe: Any = make_pool(1)
    try:
        if not uses_processes(probe):
            raise Skip("needs worker processes; this target's workers are threads")
    finally:
        stop(probe)
    return make_pool(processes, **options)


def require_processes(pool: Any) -> None:
    if not uses_processes(pool):
        raise Skip("needs worker processes; this target's workers are threads")


class Gate:
    """A folder: tasks.hold() notes in it that a task started or finished, and waits for `open`."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="refpool-conform-")

    def task(self, name: str, wait: bool = True) -> tuple[str, str, bool]:
        return (self.folder, name, wait)

    def has(self, entry: str) -> bool:
        return os.path.exists(os.path.join(self.folder, entry))

    def wait_for(self, entries: list[str], what: str, timeout: float = WAIT) -> None:
        step(what)
        deadline = time.monotonic() + timeout
        while not all(self.has(entry) for entry in entries):
            if time.monotonic() > deadline:
                missing = [e for e in entries if not self.has(e)]
                raise Broken(f"{what}: still missing after {timeout:g} s: {', '.join(missing)}")
            time.sleep(POLL)

    def pid_of(self, name: str) -> int:
        """The pid that tasks.hold_then_report_pid wrote for task `name`, once it has started."""
        self.wait_for([f"started-{name}"], f"wait for task {name} to start")
        with open(os.path.join(self.folder, f"pid-{name}")) as pid_file:
            return int(pid_file.read())

    def open(self) -> None:
        with open(os.path.join(self.folder, "open"), "a"):
            pass

    def remove(self) -> None:
        """Let every waiting task go (tasks.hold treats a missing gate as open)."""
        shutil.rmtree(self.folder, ignore_errors=True)


# Worker processes, found from /proc so that any pool can be checked.


def have_proc() -> bool:
    return os.path.exists(f"/proc/{os.getpid()}/stat")


def child_processes(*, zombies: bool = False) -> set[int]:
    """Our child processes, without multiprocessing's helpers (resource tracker, fork server)."""
    me = str(os.getpid())
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat_file:
                fields = stat_file.read().rpartition(")")[2].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline_file:
                cmdline = cmdline_file.read()
        except OSError:
            continue
        state, parent = fields[0], fields[1]
        if parent != me or (state == "Z" and not zombies):
            continue
        if b"resource_tracker" in cmdline or b"forkserver" in cmdline:
            continue
        found.add(int(entry))
    return found


def kill_descendants() -> None:
    """SIGKILL every process descended from this one (found in /proc; nothing without it)."""
    if not have_proc():
        return
    children: dict[str, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat_file:
                    parent = stat_file.read().rpartition(")")[2].split()[1]
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(entry)
    pending = list(children.get(str(os.getpid()), []))
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, []))
        with contextlib.suppress(OSError):
            os.kill(int(pid), signal.SIGKILL)


def wait_until(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


def new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and not t.name.startswith("conform:")
    ]


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# --- LIFE: the lifecycle ------------------------------------------------------------


@clause("LIFE-1", "a constructed pool is in RUN; states print as their names")
def life_1(make_pool: PoolFactory) -> None:
    pool: Any = None
    try:
        pool = make_pool(2)
        require_state(pool, "RUN", "once constructed")
        within("close()", pool.close)
        require_state(pool, "CLOSE", "after close()")
        within("terminate()", pool.terminate)
        require_state(pool, "TERMINATE", "after terminate()")
    finally:
        stop(pool)


@clause("LIFE-2", "the legal transitions, as the public API shows them")
def life_2(make_pool: PoolFactory) -> None:
    pools: list[Any] = []
    try:
        # RUN -SUBMIT-> RUN -CLOSE-> CLOSE -CLOSE-> CLOSE -JOIN-> CLOSE -TERMINATE-> TERMINATE
        pool = make_pool(2)
        pools.append(pool)
        value_of(pool.apply_async(tasks.square, (3,)), "apply_async(square, (3,))")
        require_state(pool, "RUN", "after a submit in RUN")
        pool.close()
        require_state(pool, "CLOSE", "after close() in RUN")
        pool.close()
        require_state(pool, "CLOSE", "after close() in CLOSE")
        within("join() in CLOSE", pool.join)
        require_state(pool, "CLOSE", "after join() in CLOSE")
        within("terminate() in CLOSE", pool.terminate)
        require_state(pool, "TERMINATE", "after terminate() in CLOSE")
        # RUN -TERMINATE-> TERMINATE -CLOSE, TERMINATE, JOIN-> TERMINATE
        pool = make_pool(2)
        pools.append(pool)
        within("terminate() in RUN", pool.terminate)
        require_state(pool, "TERMINATE", "after terminate() in RUN")
        pool.close()
        require_state(pool, "TERMINATE", "after close() in TERMINATE")
        within("terminate() in TERMINATE", pool.terminate)
        require_state(pool, "TERMINATE", "after terminate() in TERMINATE")
        within("join() in TERMINATE", pool.join)
        require_state(pool, "TERMINATE", "after join() in TERMINATE")
    finally:
        for pool in pools:
            stop(pool)


def _submissions(pool: Any) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("apply", lambda: pool.apply(tasks.square, (2,))),
        ("apply_async", lambda: pool.apply_async(tasks.square, (2,))),
        ("map", lambda: pool.map(tasks.square, [1, 2])),
        ("map_async", lambda: pool.map_async(tasks.square, [1, 2])),
        ("starmap", lambda: pool.starmap(tasks.add, [(1, 2)])),
        ("starmap_async", lambda: pool.starmap_async(tasks.add, [(1, 2)])),
        ("imap", lambda: pool.imap(tasks.square, [1, 2])),
        ("imap_unordered", lambda: pool.imap_unordered(tasks.square, [1, 2])),
    ]


@clause("LIFE-3", "illegal events raise ValueError: 'Pool not running', 'Pool is still running'")
def life_3(make_pool: PoolFactory) -> None:
    pools: list[Any] = []
    try:
        pool = make_pool(2)
        pools.append(pool)
        raises(pool.join, ValueError, "join() in RUN", "Pool is still running")
        require_state(pool, "RUN", "after the refused join()")
        value_of(pool.apply_async(tasks.square, (4,)), "apply_async after the refused join()")
        pool.close()
        for name, submit in _submissions(pool):
            raises(submit, ValueError, f"{name}() in CLOSE", "Pool not running")
        require_state(pool, "CLOSE", "after the refused submits")
        within("join() after close()", pool.join)
        pool = make_pool(2)
        pools.append(pool)
        within("terminate()", pool.terminate)
        for name, submit in _submissions(pool):
            raises(submit, ValueError, f"{name}() in TERMINATE", "Pool not running")
        require_state(pool, "TERMINATE", "after the refused submits")
    finally:
        for pool in pools:
            stop(pool)


@clause("LIFE-4", "close() after close()/terminate() does nothing; terminate() works in every state")
def life_4(make_pool: PoolFactory) -> None:
    pools: list[Any] = []
    try:
        pool = make_pool(2)
        pools.append(pool)
        within("close()", pool.close)
        within("close() again", pool.close)
        require_state(pool, "CLOSE", "after close() twice")
        within("join() after close() twice", pool.join)
        within("close() after join()", pool.close)
        within("terminate() after close() and join()", pool.terminate)
        within("terminate() again", pool.terminate)
        within("close() after terminate()", pool.close)
        require_state(pool, "TERMINATE", "after terminate() then close()")
        within("join() after terminate()", pool.join)
        within("terminate() after join()", pool.terminate)
        pool = make_pool(2)
        pools.append(pool)
        for i in range(3):
            within(f"terminate() #{i + 1} from RUN", pool.terminate)
        require_state(pool, "TERMINATE", "after terminate() three times")
    finally:
        for pool in pools:
            stop(pool)


@clause("LIFE-5", "`with pool:` needs RUN; leaving the block terminates the pool")
def life_5(make_pool: PoolFactory) -> None:
    pools: list[Any] = []
    try:
        pool = make_pool(2)
        pools.append(pool)

        def use() -> Any:
            with pool as entered:
                return entered.apply_async(tasks.square, (5,)).get(WAIT)

        got = within("with pool: apply_async(square, (5,)).get()", use)
        require(got == 25, f"apply_async(square, (5,)) in the with block returned {got!r}")
        require_state(pool, "TERMINATE", "after the with block")
        raises(lambda: pool.apply_async(tasks.square, (1,)), ValueError, "apply_async after the with block")
        for how in ("close", "terminate"):
            pool = make_pool(1)
            pools.append(pool)
            within(f"{how}()", getattr(pool, how))

            def enter(pool: Any = pool) -> None:
                with pool:
                    pass

            raises(enter, ValueError, f"`with pool:` after {how}()", "Pool not running")
    finally:
        for pool in pools:
            stop(pool)


@clause("LIFE-6", "a submit racing close() is refused or completed, never left unrun", extension=True)
def life_6(make_pool: PoolFactory) -> None:
    for round_ in range(3):
        pool: Any = make_pool(2)
        try:
            _race_close(pool, round_ + 1)
        finally:
            stop(pool)


def _race_close(pool: Any, round_: int) -> None:
    """Four threads submit while the main thread closes the pool; every accepted job must settle."""
    accepted: list[tuple[int, Any]] = []
    refusals: list[str] = []
    lock = threading.Lock()

    def submit(offset: int) -> None:
        for i in range(offset, offset + 2000):
            try:
                job = pool.apply_async(tasks.square, (i,))
            except ValueError as refused:
                with lock:
                    refusals.append(str(refused))
                return
            with lock:
                accepted.append((i, job))

    submitters = [
        threading.Thread(target=submit, args=(k * 10000,), name="conform: submitter", daemon=True)
        for k in range(4)
    ]
    for thread in submitters:
        thread.start()
    step(f"round {round_}: wait for 50 accepted submits, then close()")
    wait_until(lambda: len(accepted) >= 50)
    pool.close()
    for thread in submitters:
        thread.join(WAIT)
    try:
        within(f"round {round_}: join() after close() with submits racing it", pool.join)
    except Broken as hung:
        unsettled = [i for i, job in accepted if not job.ready()]
        raise Broken(
            f"{hung}; {len(unsettled)} of {len(accepted)} submits accepted while close() raced them "
            f"were never run, e.g. square({unsettled[0] if unsettled else ''})"
        ) from None
    bad = [m for m in refusals if m != "Pool not running"]
    require(not bad, f"a submit racing close() was refused with {bad[:1]}, not 'Pool not running'")
    unsettled = [i for i, job in accepted if not job.ready()]
    require(
        not unsettled,
        f"{len(unsettled)} of {len(accepted)} submits accepted while close() raced them "
        f"were never run (e.g. square({unsettled[0] if unsettled else ''}))",
    )
    wrong = [i for i, job in accepted if job.get(0) != i * i]
    require(not wrong, f"accepted submits returned wrong values, e.g. square({wrong[:1]})")


@clause("LIFE-7", "a dropped running pool warns ResourceWarning and is terminated; a pending job keeps it")
def life_7(make_pool: PoolFactory) -> None:
    threads_before = set(threading.enumerate())
    children_before = child_processes() if have_proc() else set()
    # No job first: a settled job may hold its pool a moment longer, in the pool's own thread.
    holder: list[Any] = [make_pool(2)]
    resource = _dropped_warnings(holder, "drop the only reference to a running pool; gc.collect()")
    require(bool(resource), "a running pool was garbage-collected without a ResourceWarning")
    step("wait until the dropped pool's threads and workers are gone")
    gone = wait_until(
        lambda: not new_threads(threads_before) and (not have_proc() or child_processes() <= children_before)
    )
    if not gone:
        left = [t.name for t in new_threads(threads_before)]
        raise Broken(f"a dropped running pool was not terminated: threads {left} still run")

    gate = Gate()
    try:
        holder.append(make_pool(2))
        job = holder[0].apply_async(tasks.hold, (gate.task("kept"),))
        gate.wait_for(["started-kept"], "wait for the pending job to start")
        early = _dropped_warnings(holder, "drop the pool while its job is pending; gc.collect()")
        gate.open()
        ok, value = outcome(job, "the pending job of a dropped pool")
        require(not early, "a pool with a pending job was collected (ResourceWarning) while the job ran")
        require(ok and value == "kept", f"the pending job of a dropped pool ended with {value!r}")
    finally:
        gate.remove()


def _dropped_warnings(holder: list[Any], what: str) -> list[str]:
    """Drop the pool in `holder`, collect garbage, and return the ResourceWarnings it caused."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step(what)
        holder.clear()
        gc.collect()
    found = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    # A recorded warning may hold the pool as its `source`: let it go, so the pool can be collected.
    caught.clear()
    gc.collect()
    return found


# --- API: the methods and their arguments -------------------------------------------


@clause("API-1", "apply and apply_async return f(*args, **kwds)")
def api_1(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    try:
        got = within("apply(add, (2, 3))", lambda: pool.apply(tasks.add, (2, 3)))
        require(got == 5, f"apply(add, (2, 3)) returned {got!r}, not 5")
        got = within("apply(add, (), {'a': 1, 'b': 2})", lambda: pool.apply(tasks.add, (), {"a": 1, "b": 2}))
        require(got == 3, f"apply with kwds returned {got!r}, not 3")
        got = value_of(pool.apply_async(tasks.add, (), {"a": 1, "b": 2}), "apply_async(add, (), kwds)")
        require(got == 3, f"apply_async with kwds returned {got!r}, not 3")
        got = value_of(pool.apply_async(tasks.add, (4,), {"b": 5}), "apply_async(add, (4,), {'b': 5})")
        require(got == 9, f"apply_async with args and kwds returned {got!r}, not 9")
    finally:
        stop(pool)


@clause("API-2", "map and starmap return every result in input order; the input is read in the caller")
def api_2(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(3)
    try:
        xs = list(range(100))
        got = within("map(square, range(100))", lambda: pool.map(tasks.square, xs))
        require(got == [x * x for x in xs], f"map(square, range(100)) returned {_short(got)}")
        got = within("map(square, range(100), 7)", lambda: pool.map(tasks.square, xs, 7))
        require(got == [x * x for x in xs], f"map(square, range(100), chunksize=7) returned {_short(got)}")
        pairs = [(x, 2 * x) for x in range(50)]
        got = within("starmap(add, pairs)", lambda: pool.starmap(tasks.add, pairs))
        require(got == [3 * x for x in range(50)], f"starmap(add, pairs) returned {_short(got)}")
        got = value_of(pool.map_async(tasks.square, iter(xs)), "map_async(square, iter(range(100)))")
        require(got == [x * x for x in xs], f"map_async over an iterator returned {_short(got)}")
        got = value_of(pool.starmap_async(tasks.add, pairs), "starmap_async(add, pairs)")
        require(got == [3 * x for x in range(50)], f"starmap_async returned {_short(got)}")
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
    finally:
        stop(pool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def _chunks_seen(pool: Any, submit: str, n: int, chunksize: int | None) -> list[int]:
    """Which items did not start while item 0 held the one other worker: the rest of its chunk."""
    gate = Gate()
    try:
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
    finally:
        gate.remove()


@clause("API-3", "default chunksizes; imap refuses a chunksize below 1")
def api_3(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    try:
        # ceil(24 / (4 * 2)) = 3: items 1 and 2 share item 0's chunk, and wait behind it.
        waiting = _chunks_seen(pool, "map_async", 24, None)
        require(
            waiting == [1, 2],
            f"map of 24 items on 2 workers: items {waiting} waited behind item 0, not [1, 2] "
            f"(default chunksize 3)",
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
    finally:
        stop(pool)


@clause("API-11", "map refuses a chunksize below 1; a chunksize not an int is refused", extension=True)
def api_11(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    try:
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
    finally:
        stop(pool)


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
        got = f"returned {_short(result)}"
    except multiprocessing.TimeoutError:
        got = "never settled"
    except Exception as error:
        got = f"failed later with {describe(error)}"
    raise Broken(f"{what} was accepted and {got}, instead of raising {kind.__name__}")


@clause("API-4", "imap yields in input order, imap_unordered in finishing order; both have next(timeout)")
def api_4(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    gate = Gate()
    try:
        got = within("list(imap(square, range(50)))", lambda: list(pool.imap(tasks.square, range(50))))
        require(got == [x * x for x in range(50)], f"imap(square, range(50)) yielded {_short(got)}")
        got = within("list(imap(square, range(50), 4))", lambda: list(pool.imap(tasks.square, range(50), 4)))
        require(got == [x * x for x in range(50)], f"imap(square, range(50), 4) yielded {_short(got)}")
        got = within(
            "sorted(imap_unordered(square, range(50)))",
            lambda: sorted(pool.imap_unordered(tasks.square, range(50))),
        )
        require(got == sorted(x * x for x in range(50)), f"imap_unordered yielded {_short(got)}")

        # imap_unordered: "b" finishes while "a" is held, so it comes first.
        unordered = pool.imap_unordered(tasks.hold, [gate.task("ua"), gate.task("ub", wait=False)])
        kind, first = next_of(
            unordered,
            "imap_unordered while its first item is held",
            "imap_unordered yielded nothing while its second item had finished",
        )
        require((kind, first) == ("value", "ub"), f"imap_unordered first yielded {kind} {first!r}, not 'ub'")
        gate.open()
        kind, second = next_of(unordered, "imap_unordered after the gate opened")
        require((kind, second) == ("value", "ua"), f"imap_unordered then yielded {kind} {second!r}")
        kind, _ = next_of(unordered, "imap_unordered at its end")
        require(kind == "stop", f"imap_unordered went on after its last item ({kind})")

        gate.remove()
        gate = Gate()
        ordered = pool.imap(tasks.hold, [gate.task("a"), gate.task("b", wait=False)])
        gate.wait_for(["finished-b"], "imap: wait for the second item to finish")
        step(f"imap.next({SHORT}) while its first item is held")
        try:
            early = ordered.next(SHORT)
            raise Broken(f"imap yielded {early!r} while its first item was still running")
        except multiprocessing.TimeoutError:
            pass
        gate.open()
        got = [next_of(ordered, "imap after the gate opened") for _ in range(3)]
        require(
            got == [("value", "a"), ("value", "b"), ("stop", None)],
            f"imap yielded {got}, not a, b, then the end",
        )
    finally:
        gate.remove()
        stop(pool)


@clause("API-5", "imap reads its input only as workers take tasks", extension=True)
def api_5(make_pool: PoolFactory) -> None:
    processes = 2
    pool: Any = make_pool(processes)
    try:
        for submit in ("imap", "imap_unordered"):
            gate = Gate()
            try:
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
            finally:
                gate.remove()
    finally:
        stop(pool)


class InputBroke(LookupError):
    pass


@clause("API-6", "an imap input that raises: the results before it, then its exception, then the end")
def api_6(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    try:
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
    finally:
        stop(pool)


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
    probe: Any = make_pool(1)
    try:
        processes_pool = uses_processes(probe)
    finally:
        stop(probe)
    if processes_pool:  # a ThreadPool takes no maxtasksperchild
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
        pool: Any = make_pool(None)
        try:
            found = re.search(r"pool_size=(\d+)", repr(pool))
            size = int(found.group(1)) if found else None
            require(
                size == expected,
                f"make_pool(None) in a process that may use {expected} of {os.cpu_count()} CPUs "
                f"has pool_size={size}",
            )
        finally:
            stop(pool)
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
    folder = tempfile.mkdtemp(prefix="refpool-conform-")
    pool: Any = None
    try:
        pool = make_pool(2, initializer=tasks.record_init, initargs=(folder, "tag"))
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
    finally:
        stop(pool)
        shutil.rmtree(folder, ignore_errors=True)


@clause("API-9", "repr(pool) is <module.Class state=STATE pool_size=N>; pickling a pool raises")
def api_9(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(3)
    try:
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
    finally:
        stop(pool)


@clause("API-10", "context= takes a multiprocessing context: fork, spawn and forkserver work")
def api_10(make_pool: PoolFactory) -> None:
    probe: Any = make_pool(1)
    try:
        require_processes(probe)
    finally:
        stop(probe)
    tasks.MARK = "set in the parent"
    for method in multiprocessing.get_all_start_methods():
        pool: Any = None
        try:
            step(f"make_pool(2, context=get_context({method!r}))")
            pool = make_pool(2, context=multiprocessing.get_context(method))
            got = value_of(
                pool.map_async(tasks.square, range(10)), f"map in a pool with the {method} context"
            )
            require(got == [x * x for x in range(10)], f"map with context {method} returned {_short(got)}")
            marked = value_of(pool.apply_async(tasks.mark), f"apply_async(mark) with the {method} context")
            forked = marked == tasks.MARK
            require(
                forked == (method == "fork"),
                f"with context={method}, a worker {'was' if forked else 'was not'} forked from the parent",
            )
        finally:
            stop(pool)


# --- JOB: jobs and their results ----------------------------------------------------


@clause("JOB-1", "every job settles exactly once; none is unsettled once the pool is joined")
def job_1(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(3)
    try:
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
                f"{name} after join() yielded {_short(got)}",
            )
    finally:
        stop(pool)


@clause("JOB-2", "get(timeout) raises multiprocessing.TimeoutError; wait, ready and successful")
def job_2(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    gate = Gate()
    try:
        for submit in ("apply_async", "map_async"):
            gate.remove()
            gate = Gate()
            if submit == "apply_async":
                job = pool.apply_async(tasks.hold, (gate.task("a"),))
                expected: Any = "a"
            else:
                job = pool.map_async(tasks.hold, [gate.task("a"), gate.task("b", wait=False)])
                expected = ["a", "b"]
            gate.wait_for(["started-a"], f"{submit}: wait for the held task to start")
            step(f"{submit}: get({SHORT}) while the task is held")
            try:
                early = job.get(SHORT)
                raise Broken(f"{submit}: get({SHORT}) returned {early!r} while the task was held")
            except multiprocessing.TimeoutError:
                pass
            except Exception as wrong:
                raise Broken(
                    f"{submit}: get({SHORT}) on a running job raised {describe(wrong)}, "
                    f"not multiprocessing.TimeoutError"
                ) from None
            require(not job.ready(), f"{submit}: ready() is True while the task is held")
            step(f"{submit}: wait({SHORT}) while the task is held")
            started = time.monotonic()
            job.wait(SHORT)
            require(time.monotonic() - started >= SHORT * 0.9, f"{submit}: wait({SHORT}) returned early")
            try:
                job.successful()
                raise Broken(f"{submit}: successful() did not raise ValueError on a job not ready")
            except ValueError:
                pass
            gate.open()
            step(f"{submit}: wait({WAIT:g}) after the gate opened")
            job.wait(WAIT)
            require(job.ready(), f"{submit}: not ready after wait({WAIT:g}), the gate being open")
            require(job.successful() is True, f"{submit}: successful() is not True for a job that succeeded")
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
    finally:
        gate.remove()
        stop(pool)


@clause("JOB-3", "a task's exception is re-raised by get(), with the worker's traceback as __cause__")
def job_3(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    try:
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
    finally:
        stop(pool)


@clause("JOB-4", "callback/error_callback run once before get() returns")
def job_4(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    try:
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
        time.sleep(SHORT)
        require(values == [9] and len(errors) == 1 and len(lists) == 1, "a callback ran more than once")
    finally:
        stop(pool)


@clause("JOB-7", "a callback that is not callable is refused at submission", extension=True)
def job_7(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    try:
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
    finally:
        stop(pool)


class CallbackBroke(RuntimeError):
    pass


def _raising_callback(_: Any) -> None:
    raise CallbackBroke("refpool conform: this callback fails on purpose")


@clause("JOB-5", "a callback that raises fails only its own job", extension=True)
def job_5(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    gate = Gate()
    try:
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
        require_state(pool, "RUN", "after callbacks raised")
        got = value_of(pool.map_async(tasks.square, range(5)), "map_async after callbacks raised")
        require(got == [x * x for x in range(5)], f"map after callbacks raised returned {_short(got)}")
    finally:
        gate.remove()
        stop(pool)


@clause("JOB-6", "a map job fails as a whole with its failed chunk's exception")
def job_6(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    try:
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
            raise Broken(f"map with a failing item returned {_short(got)}")
        except ValueError as map_error:
            require("-3" in str(map_error), f"map with a failing item raised {describe(map_error)}")
        error = error_of(
            pool.starmap_async(tasks.add, [(1, 2), (1, "x"), (3, 4)], 1), "starmap_async with a failing item"
        )
        require(isinstance(error, TypeError), f"a starmap with a failing item raised {describe(error)}")
    finally:
        stop(pool)


# --- ERR: values that cannot travel -------------------------------------------------


@clause("ERR-1", "a result the worker cannot pickle fails its task with MaybeEncodingError")
def err_1(make_pool: PoolFactory) -> None:
    pool = process_pool(make_pool, 2)
    try:
        maybe = multiprocessing.pool.MaybeEncodingError  # type: ignore[attr-defined]
        error = error_of(pool.apply_async(tasks.unpicklable_result), "apply_async returning a lock")
        require(isinstance(error, maybe), f"a result that cannot be pickled failed with {describe(error)}")
        error = error_of(pool.map_async(tasks.unpicklable_result_of, [1, 2], 1), "map_async returning a lock")
        require(
            isinstance(error, maybe), f"a map result that cannot be pickled failed with {describe(error)}"
        )
        got = value_of(pool.apply_async(tasks.square, (6,)), "apply_async after an unpicklable result")
        require(got == 36, f"after an unpicklable result, square(6) returned {got!r}")
    finally:
        stop(pool)


@clause("ERR-2", "a result or exception the parent cannot unpickle fails its job", extension=True)
def err_2(make_pool: PoolFactory) -> None:
    pool = process_pool(make_pool, 2)
    try:
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
    finally:
        stop(pool)


@clause("ERR-3", "a task the parent cannot pickle fails its job with the pickling error")
def err_3(make_pool: PoolFactory) -> None:
    pool = process_pool(make_pool, 2)
    try:

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
    finally:
        stop(pool)


# --- WORK: workers ------------------------------------------------------------------


def _require_workers(expected: int, what: str, children_before: set[int]) -> None:
    """Wait until exactly `expected` live workers, never seeing more."""
    step(what)
    deadline = time.monotonic() + WAIT
    while True:
        live = child_processes() - children_before
        require(len(live) <= expected, f"{what}: {len(live)} live workers, more than {expected}")
        if len(live) == expected:
            return
        if time.monotonic() > deadline:
            raise Broken(f"{what}: {len(live)} live workers after {WAIT:g} s, not {expected}")
        time.sleep(POLL)


@clause("WORK-1", "when a worker exits the pool returns to exactly `processes` live workers")
def work_1(make_pool: PoolFactory) -> None:
    if not have_proc():
        raise Skip("needs /proc to count worker processes")
    children_before = child_processes()
    pool = process_pool(make_pool, 3)
    try:
        _require_workers(3, "a new pool of 3", children_before)
        # The victims are idle workers, taken from /proc: no task runs after a kill, so that
        # this checks the count only (CPython's idle workers hold the task queue's lock, and a
        # worker killed holding it stops the pool: that is LOST's business).
        for round_ in range(3):
            victim = min(child_processes() - children_before)
            step(f"SIGKILL worker {victim}")
            os.kill(victim, signal.SIGKILL)
            step(f"waiting for the pool to reap worker {victim}")
            deadline = time.monotonic() + WAIT
            while victim in child_processes() and time.monotonic() < deadline:
                time.sleep(POLL)  # a process's end has no event to wait on here
            require(victim not in child_processes(), f"the killed worker {victim} was not reaped in {WAIT} s")
            _require_workers(3, f"after worker {victim} was killed (round {round_ + 1})", children_before)
    finally:
        stop(pool)


@clause("WORK-4", "a worker exits after maxtasksperchild tasks and is replaced")
def work_4(make_pool: PoolFactory) -> None:
    children_before = child_processes() if have_proc() else set()
    pool = process_pool(make_pool, 2, maxtasksperchild=1)
    try:
        pids = value_of(pool.map_async(tasks.pid, range(6), 1), "map_async(pid, range(6), chunksize=1)")
        require(len(set(pids)) == 6, f"with maxtasksperchild=1, 6 tasks ran in {len(set(pids))} workers")
        if have_proc():
            _require_workers(2, "after 6 tasks with maxtasksperchild=1", children_before)
        got = value_of(pool.apply_async(tasks.square, (9,)), "apply_async after the workers were replaced")
        require(got == 81, f"square(9) returned {got!r}")
    finally:
        stop(pool)


@clause("WORK-5", "no task waits behind a running task while a worker is idle")
def work_5(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    gate = Gate()
    try:
        long = pool.apply_async(tasks.hold, (gate.task("long"),))
        gate.wait_for(["started-long"], "wait for the long task to start")
        quick = [pool.apply_async(tasks.square, (i,)) for i in range(10)]
        for i, job in enumerate(quick):
            got = value_of(
                job,
                f"quick job {i} while one worker runs a long task",
                f"quick job {i} waited behind a running task while a worker was idle",
            )
            require(got == i * i, f"quick job {i} returned {got!r}")
        gate.open()
        value_of(long, "the long task")
        second = Gate()
        try:
            specs = [second.task("m0")] + [second.task(f"m{i}", wait=False) for i in range(1, 6)]
            results = pool.imap(tasks.hold, specs)
            second.wait_for(
                [f"finished-m{i}" for i in range(1, 6)],
                "imap items behind a held one, while a worker is idle",
            )
            second.open()
            for _ in range(6):
                next_of(results, "imap after the gate opened")
        finally:
            second.remove()
    finally:
        gate.remove()
        stop(pool)


# --- LOST: workers that die ---------------------------------------------------------


@clause("LOST-1", "a worker that dies fails the job whose task it held", extension=True)
def lost_1(make_pool: PoolFactory) -> None:
    hang = "a worker {} and its job never settled: get() timed out after 10 s (CPython bpo-22393)"
    pool = process_pool(make_pool, 2)
    gate = Gate()
    try:
        error_of(
            pool.apply_async(tasks.exit_abruptly, (3,)),
            "a task calls os._exit(3)",
            hang.format("called os._exit(3) mid-task"),
        )
        error_of(
            pool.apply_async(tasks.exit_by_sys_exit, (4,)),
            "a task calls sys.exit(4)",
            hang.format("called sys.exit(4) mid-task"),
        )
        held = pool.apply_async(tasks.hold_then_report_pid, (gate.task("victim"),))
        victim = gate.pid_of("victim")
        step(f"SIGKILL worker {victim}")
        os.kill(victim, signal.SIGKILL)
        # Any exception will do here; refpool's WorkerLostError names the pid and exit code.
        error_of(held, "a task whose worker was killed", hang.format("was killed mid-task"))
        got = value_of(pool.apply_async(tasks.square, (4,)), "apply_async after lost workers")
        require(got == 16, f"square(4) after lost workers returned {got!r}")
    finally:
        gate.remove()
        stop(pool)
    # Outcomes sent before the worker died are read first: one worker, so item 2's worker ran 0 and 1.
    pool = process_pool(make_pool, 1)
    try:
        results = pool.imap(tasks.exit_at, range(5))
        seen = [
            next_of(
                results,
                "imap(exit_at) where item 2 exits the worker",
                "a worker exited mid-task and imap never yielded that item",
            )
            for _ in range(6)
        ]
        kinds = [kind for kind, _ in seen]
        require(
            kinds == ["value", "value", "error", "value", "value", "stop"],
            f"imap where item 2's worker exits yielded {_short(seen)}",
        )
    finally:
        stop(pool)


@clause("LOST-3", "a worker's death fails one task, never those queued behind it", extension=True)
def lost_3(make_pool: PoolFactory) -> None:
    # One worker, so that every task is queued behind the one it runs, wherever the
    # pool keeps them: in a queue of its own, or written ahead to that worker.
    pool = process_pool(make_pool, 1)
    gate = Gate()
    try:
        held = pool.apply_async(tasks.hold_then_report_pid, (gate.task("victim"),))
        victim = gate.pid_of("victim")
        queued = [pool.apply_async(tasks.square, (i,)) for i in range(8)]
        step(f"SIGKILL worker {victim}, with 8 tasks queued behind its task")
        os.kill(victim, signal.SIGKILL)
        error_of(
            held, "the task whose worker was killed", "a worker was killed mid-task and its job never settled"
        )
        for i, job in enumerate(queued):
            got = value_of(
                job,
                f"task {i} of 8 queued behind the killed worker's task",
                f"task {i} of 8 queued behind a killed worker's task never ran",
            )
            require(got == i * i, f"task {i} queued behind a killed worker's task returned {got!r}")
    finally:
        gate.remove()
        stop(pool)


@clause("LOST-4", "a raising initializer loses no task; jobs fail if it keeps raising", extension=True)
def lost_4(make_pool: PoolFactory) -> None:
    folder = tempfile.mkdtemp(prefix="refpool-conform-")
    pool: Any = None
    try:
        pool = make_pool(2, initializer=tasks.fail_first_initializers, initargs=(folder, 2))
        jobs = [pool.apply_async(tasks.square, (i,)) for i in range(20)]
        for i, job in enumerate(jobs):
            got = value_of(
                job,
                f"task {i} in a pool whose first two workers' initializer raised",
                f"task {i} never settled after two workers' initializer raised",
            )
            require(got == i * i, f"task {i} returned {got!r}")
        within("close()", pool.close)
        within("join()", pool.join)
    finally:
        stop(pool)
        shutil.rmtree(folder, ignore_errors=True)
    pool = make_pool(2, initializer=tasks.failing_initializer)
    try:
        error = error_of(
            pool.apply_async(tasks.square, (2,)),
            "a task in a pool whose initializer always raises",
            "a task waited for a worker whose initializer always raises",
        )
        causes: list[BaseException] = []
        cause: BaseException | None = error
        while cause is not None and len(causes) < 10:
            causes.append(cause)
            cause = cause.__cause__
        require(
            any("fails on purpose" in str(c) for c in causes),
            f"a job failed with {describe(error)}, whose causes do not include the initializer's exception",
        )
        within("close()", pool.close)
        within("join()", pool.join)
    finally:
        stop(pool)


@clause("LOST-2", "a lost worker changes nothing else: state, replacement, other jobs")
def lost_2(make_pool: PoolFactory) -> None:
    pool = process_pool(make_pool, 2)
    gate = Gate()
    try:
        long = pool.apply_async(tasks.hold, (gate.task("long"),))
        gate.wait_for(["started-long"], "wait for a long task to hold one worker")
        pool.apply_async(tasks.exit_abruptly, (3,))  # the other worker dies; its job is LOST-1's business
        got = value_of(
            pool.apply_async(tasks.square, (5,)),
            "a new job after a worker was lost",
            "a worker was lost, and a new job never ran (the worker was not replaced)",
        )
        require(got == 25, f"square(5) after a lost worker returned {got!r}")
        require_state(pool, "RUN", "after a worker was lost")
        got = value_of(pool.map_async(tasks.square, range(20)), "map_async after a worker was lost")
        require(got == [x * x for x in range(20)], f"map after a lost worker returned {_short(got)}")
        gate.open()
        got = value_of(long, "a job that ran while another worker was lost")
        require(got == "long", f"a job that ran while another worker was lost returned {got!r}")
    finally:
        gate.remove()
        stop(pool)


# --- SHUT: shutting down ------------------------------------------------------------


@clause("SHUT-4", "close()+join() and terminate()+join() return")
def shut_4(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    try:
        within("close()", pool.close)
        within("join() after close()", pool.join)
    finally:
        stop(pool)
    pool = make_pool(2)
    try:
        jobs = [pool.apply_async(tasks.square, (i,)) for i in range(20)]
        pending = pool.map_async(tasks.square, range(50), 1)
        within("close() with jobs pending", pool.close)
        within("join() after close() with jobs pending", pool.join)
        require(all(job.ready() for job in [*jobs, pending]), "join() returned before the jobs settled")
    finally:
        stop(pool)
    pool = make_pool(2)
    gate = Gate()
    try:
        value_of(pool.apply_async(tasks.square, (2,)), "apply_async(square, (2,))")
        within("terminate()", pool.terminate)
        within("join() after terminate()", pool.join)
        pool = make_pool(2)
        pool.apply_async(tasks.hold, (gate.task("long"),))
        gate.wait_for(["started-long"], "wait for a long task to start")
        # A thread cannot be stopped mid-task: let the task end soon after terminate() begins.
        threading.Timer(1.0, gate.open).start()
        within("terminate() with a task running", pool.terminate)
        within("join() after terminate() with a task running", pool.join)
    finally:
        gate.remove()
        stop(pool)


@clause("SHUT-5", "terminate() fails every unsettled job", extension=True)
def shut_5(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    gate = Gate()
    try:
        running = [pool.apply_async(tasks.hold, (gate.task(name),)) for name in ("a", "b")]
        gate.wait_for(["started-a", "started-b"], "wait for both workers to hold a task")
        queued = pool.apply_async(tasks.square, (3,))
        mapped = pool.map_async(tasks.square, range(10))
        # Threads stop only after their task: let the tasks end soon after terminate() begins.
        threading.Timer(1.0, gate.open).start()
        terminating = threading.Thread(target=pool.terminate, name="conform: terminate", daemon=True)
        step("terminate() with two tasks running and two jobs queued")
        terminating.start()
        for what, job in (
            ("a queued apply_async", queued),
            ("a queued map_async", mapped),
            ("a running job", running[0]),
        ):
            error = error_of(
                job,
                f"{what} after terminate()",
                f"terminate() left {what} unsettled: get() timed out after {WAIT:g} s",
            )
            require(
                not isinstance(error, multiprocessing.TimeoutError),
                f"{what} after terminate() raised TimeoutError",
            )
        terminating.join(WAIT)
        require(not terminating.is_alive(), f"terminate() did not return within {WAIT:g} s")
    finally:
        gate.remove()
        stop(pool)


@clause("SHUT-6", "a joined pool leaves no worker process, thread or file descriptor behind")
def shut_6(make_pool: PoolFactory) -> None:
    if not have_proc():
        raise Skip("needs /proc to see child processes and file descriptors")
    warm_up(make_pool)
    # The collector stays off: a pool whose descriptors only a collection of
    # reference cycles closes holds them for as long as the program makes no
    # garbage, or forever with gc.disable(); a program that makes pools in a
    # loop then runs out of descriptors.
    with collector_off():
        # A killed worker is tried under SHUT-7 only: in a pool that breaks LOST-1
        # (CPython's) it may leave the next map waiting, which is not this clause's fault.
        for how in ("close", "terminate"):
            threads_before = set(threading.enumerate())
            children_before = child_processes(zombies=True)
            fds_before = open_fds()
            holder: list[Any] = [make_pool(2)]
            try:
                use_then_stop(holder[0], how)
                children = child_processes(zombies=True) - children_before
                require(not children, f"after {how} and join(), child processes {sorted(children)} remain")
                threads = new_threads(threads_before)
                require(not threads, f"after {how} and join(), threads {[t.name for t in threads]} still run")
            finally:
                stop(holder[0])
            holder.clear()
            leaked = open_fds() - fds_before
            require(
                not leaked,
                f"after {how}, join() and dropping the pool, {len(leaked)} fds stay open until the "
                "garbage collector runs (it was off)",
            )


@clause("SHUT-7", "a joined pool holds no file descriptor, even while the caller holds it", extension=True)
def shut_7(make_pool: PoolFactory) -> None:
    if not have_proc():
        raise Skip("needs /proc to see file descriptors")
    warm_up(make_pool)
    with collector_off():
        for how in ("close", "terminate", "close after a worker was killed"):
            fds_before = open_fds()
            pool: Any = make_pool(2)
            try:
                use_then_stop(pool, how)
                held = open_fds() - fds_before
                require(not held, f"after {how} and join(), the pool still holds {len(held)} fds")
            finally:
                stop(pool)


@clause("SHUT-8", "nothing of a finished task stays referenced by the pool")
def shut_8(make_pool: PoolFactory) -> None:
    pool: Any = make_pool(2)
    try:
        for method in ("map", "imap", "apply_async"):
            items = [tasks.Tracked(i) for i in range(20)]
            inputs = [weakref.ref(item) for item in items]
            if method == "map":
                results = value_of(pool.map_async(tasks.tracked_copy, items), "map_async(tracked_copy, ...)")
            elif method == "imap":
                iterator = pool.imap(tasks.tracked_copy, items)
                results = [next_value(iterator, "imap(tracked_copy, ...)") for _ in items]
                del iterator
            else:
                jobs = [pool.apply_async(tasks.tracked_copy, (item,)) for item in items]
                results = [value_of(job, "apply_async(tracked_copy, (item,))") for job in jobs]
                del jobs
            outputs = [weakref.ref(result) for result in results]
            del items, results
            gc.collect()
            alive = sum(ref() is not None for ref in inputs)
            require(not alive, f"after {method} returned and its inputs were dropped, the pool holds {alive}")
            alive = sum(ref() is not None for ref in outputs)
            require(not alive, f"after {method}'s results were dropped, the pool holds {alive} of them")
    finally:
        stop(pool)


def warm_up(make_pool: PoolFactory) -> None:
    """Make and join one pool first: what a start method opens once (a fork server, a
    resource tracker) stays open for the program's life, and is not the pool's. Two workers,
    as the pools that follow: Ray sizes its cluster by the first pool a process makes."""
    pool: Any = make_pool(2)
    try:
        value_of(pool.apply_async(tasks.square, (2,)), "apply_async(square, (2,)) in a first pool")
        within("close()", pool.close)
        within("join()", pool.join)
    finally:
        stop(pool)
    gc.collect()


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    gc.collect()
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def use_then_stop(pool: Any, how: str) -> None:
    """Run tasks on the pool, then close or terminate it as `how` says, and join it."""
    value_of(pool.map_async(tasks.square, range(20)), "map_async(square, range(20))")
    if how == "close after a worker was killed" and uses_processes(pool):
        victim = value_of(pool.apply_async(tasks.pid), "apply_async(pid)")
        step(f"SIGKILL idle worker {victim}, and wait until the pool has reaped it")
        os.kill(victim, signal.SIGKILL)
        # Until then the pool may still hand it a task, which is then lost (LOST-1).
        deadline = time.monotonic() + WAIT
        while victim in child_processes(zombies=True):
            require(time.monotonic() < deadline, f"the pool never reaped its killed worker {victim}")
            time.sleep(POLL)
        value_of(pool.map_async(tasks.square, range(20)), "map_async(square, range(20)) after the kill")
    if how == "terminate":
        within("terminate()", pool.terminate)
    else:
        within("close()", pool.close)
    within(f"join() after {how}", pool.join)


def next_value(iterator: Any, what: str) -> Any:
    kind, value = next_of(iterator, what)
    require(kind == "value", f"{what} gave {kind} {value!r} instead of a value")
    return value
