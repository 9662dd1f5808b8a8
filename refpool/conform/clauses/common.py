"""What every check uses: registering a check, `running(pool)`, which stops the pool however the
check ends, bounds on blocking calls, a job's outcome, and a pool whose workers are processes."""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .. import tasks
from ..bounded import TimedOut, call_within
from ..registry import Broken, PoolFactory, Skip, check, require, step
from .proc import kill_descendants

READ_AHEAD = 65  # API-5: the tasks imap may read beyond those that workers hold...
WORKER_HOLDS = 8  # ...and the most a worker may hold (WORK-3)
WAIT = 10.0  # seconds: a bound on each blocking call; a conforming pool answers in milliseconds
SHORT = 0.3  # seconds: how long a check waits for something that must NOT happen
CLEANUP = 3.0  # seconds: how long cleanup waits for terminate(); the check's leftovers are killed after
POLL = 0.01


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


@contextlib.contextmanager
def running(pool: Any) -> Iterator[Any]:
    """`with running(make_pool(2)) as pool:` the pool, stopped on the way out whatever the verdict."""
    try:
        yield pool
    finally:
        stop(pool)


def stop(pool: Any) -> None:
    """Terminate, without letting a target that blocks or raises there stop the check."""

    def terminate() -> None:
        with contextlib.suppress(Exception):
            pool.terminate()

    thread = threading.Thread(target=terminate, name="conform: cleanup", daemon=True)
    thread.start()
    thread.join(CLEANUP)


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


def require_gives_up(wait: Callable[[float], Any], call: str, unsettled: str) -> None:
    """`wait(SHORT)` (a job's get, an iterator's next) on what cannot have settled raises
    multiprocessing.TimeoutError itself (JOB-2, API-4), not a fork's (see `timed_out`); `call`
    names the call and `unsettled` says why it cannot have settled."""
    try:
        early = wait(SHORT)
    except multiprocessing.TimeoutError:
        return
    except Exception as wrong:
        raise Broken(
            f"{call}({SHORT}) {unsettled} raised {describe(wrong)}, not multiprocessing.TimeoutError"
        ) from None
    raise Broken(f"{call}({SHORT}) returned {early!r} {unsettled}")


def value_of(job: Any, what: str, hang: str = "") -> Any:
    """The job's value; Broken if it failed or did not settle."""
    ok, value = outcome(job, what, hang)
    if not ok:
        raise Broken(f"{what} raised {describe(value)}")
    return value


def require_squares(jobs: list[Any], what: str, hang: str) -> None:
    """Job i of `jobs` is square(i) and returns i * i; `what` and `hang` name job {i}."""
    for i, job in enumerate(jobs):
        got = value_of(job, what.format(i=i), hang.format(i=i))
        require(got == i * i, f"{what.format(i=i)} returned {got!r}")


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


def next_value(iterator: Any, what: str) -> Any:
    kind, value = next_of(iterator, what)
    require(kind == "value", f"{what} gave {kind} {value!r} instead of a value")
    return value


def describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}({text[0][:120]!r})" if text else type(error).__name__


def short(value: Any) -> str:
    """repr(value), cut to fit in a one-line reason."""
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


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


# Which pool a check uses: its workers may have to be processes.

THREADS = "needs worker processes; this target's workers are threads"


def uses_processes(pool: Any) -> bool:
    """Whether the pool's workers are processes: a task there has another pid than ours.

    Asked of the pool the check uses anyway, never of a probe pool made first:
    a target may refuse a second pool in the same process (Ray's Pool(n) refuses
    one larger than the first), and the check would fail before its clause.
    """
    worker = value_of(pool.apply_async(tasks.pid), "apply_async(pid) to see what a worker is")
    return bool(worker != os.getpid())


def require_processes(pool: Any) -> None:
    if not uses_processes(pool):
        raise Skip(THREADS)


def process_pool(make_pool: PoolFactory, processes: int, **options: Any) -> Any:
    """The check's pool of `processes` workers with `options`; Skip if its workers are threads.

    Asked before any task that ends its worker: os._exit in a thread would end
    the check. A ThreadPool does not accept maxtasksperchild or context: a pool
    that refuses an option by TypeError is made again without it, only to tell
    a thread pool (Skip) from a process pool that lacks the option (Broken).
    """
    try:
        pool = make_pool(processes, **options)
    except TypeError as refused:
        if not options:
            raise
        with running(make_pool(processes)) as plain:
            threads = not uses_processes(plain)
        if threads:
            raise Skip(THREADS) from None
        shown = ", ".join(f"{name}={value!r}" for name, value in options.items())
        raise Broken(f"make_pool({processes}, {shown}) raised TypeError({str(refused)!r})") from None
    try:
        require_processes(pool)
    except BaseException:
        stop(pool)
        raise
    return pool
