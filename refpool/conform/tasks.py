"""Functions the checks send to the target's workers: module level, so every start method can import them.

Tasks that must wait for the check, or tell it that they started, do it with
files in a folder the check owns (a "gate", see clauses.gates.Gate): files work the
same between threads and between processes, whatever the start method, and
need no manager process. Every wait here is bounded, so that a task never
outlives a check by more than HOLD_LIMIT seconds.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

HOLD_LIMIT = 60.0  # seconds: the longest any task here waits for its gate
POLL = 0.005

# Set in the checker's process by the API-10 check: a worker started by fork
# sees the parent's value, one started by spawn or forkserver sees None.
MARK: str | None = None


def square(x: int) -> int:
    return x * x


def add(a: int, b: int) -> int:
    return a + b


def pid(_: object = None) -> int:
    return os.getpid()


def identity(_: object = None) -> str:
    """Which worker runs this: a process and a thread (a ThreadPool's workers share the pid)."""
    return f"{os.getpid()}:{threading.get_ident()}"


def mark() -> str | None:
    return MARK


def exit_abruptly(code: int = 3) -> None:
    os._exit(code)


def exit_by_sys_exit(code: int = 4) -> None:
    sys.exit(code)


def exit_at(x: int, fatal: int = 2) -> int:
    """x, except that item `fatal` ends the worker's process with os._exit(3)."""
    if x == fatal:
        os._exit(3)
    return x


def raise_given(error: BaseException) -> None:
    raise error


def fail_negative(x: int) -> int:
    if x < 0:
        raise ValueError(f"item {x} failed on purpose")
    return x


# --- gates: files that say a task started, finished, or may go on -----------------


def _touch(path: str) -> None:
    try:
        with open(path, "a"):
            pass
    except OSError:  # the check removed its gate: it has stopped listening
        pass


def _wait_open(folder: str) -> bool:
    deadline = time.monotonic() + HOLD_LIMIT
    while time.monotonic() < deadline:
        if os.path.exists(os.path.join(folder, "open")) or not os.path.isdir(folder):
            return True
        time.sleep(POLL)
    return False


def hold(spec: tuple[str, str, bool]) -> str:
    """Note that task `name` started; if `wait`, wait until the gate opens; note it finished; return name."""
    folder, name, wait = spec
    _touch(os.path.join(folder, f"started-{name}"))
    if wait:
        _wait_open(folder)
    _touch(os.path.join(folder, f"finished-{name}"))
    return name


def hold_then_report_pid(spec: tuple[str, str, bool]) -> int:
    """As hold(), but write this worker's pid where the check can read it first, and return it."""
    folder, name, _ = spec
    with open(os.path.join(folder, f"pid-{name}"), "w") as out:
        out.write(str(os.getpid()))
    hold(spec)
    return os.getpid()


def meet(spec: tuple[str, str, int]) -> tuple[str, list[str]]:
    """Start, then wait until `count` tasks have started (so each runs in its own worker).

    Returns this worker's identity and what the initializer recorded for it.
    """
    folder, name, count = spec
    _touch(os.path.join(folder, f"started-{name}"))
    deadline = time.monotonic() + HOLD_LIMIT
    while time.monotonic() < deadline:
        if sum(entry.startswith("started-") for entry in os.listdir(folder)) >= count:
            break
        time.sleep(POLL)
    return initialized(folder)


def note_run(spec: tuple[str, str]) -> str:
    """Add a line (this worker's pid) to `runs-NAME` in the folder, so that the check can count how
    many times task NAME ran, and where; return NAME."""
    folder, name = spec
    with open(os.path.join(folder, f"runs-{name}"), "a") as out:
        out.write(f"{os.getpid()}\n")
    return name


# --- initializers -------------------------------------------------------------------


def record_init(folder: str, tag: str) -> None:
    """An initializer: append `tag` to this worker's own file in `folder`."""
    with open(os.path.join(folder, f"init-{identity()}"), "a") as out:
        out.write(tag + "\n")


def initialized(folder: str) -> tuple[str, list[str]]:
    """This worker's identity, and the lines record_init wrote for it (none if it never ran)."""
    me = identity()
    try:
        with open(os.path.join(folder, f"init-{me}")) as records:
            return me, records.read().splitlines()
    except FileNotFoundError:
        return me, []


def failing_initializer() -> None:
    raise RuntimeError("refpool conform: this initializer fails on purpose")


def fail_first_initializers(folder: str, failures: int) -> None:
    """An initializer that raises in the first `failures` workers to run it, then succeeds;
    each attempt takes the next free numbered file in `folder`."""
    attempt = 0
    while True:
        try:
            os.close(os.open(os.path.join(folder, f"attempt-{attempt}"), os.O_CREAT | os.O_EXCL))
            break
        except FileExistsError:
            attempt += 1
    if attempt < failures:
        raise ConnectionError(f"refpool conform: not up yet (attempt {attempt})")


class Tracked:
    """An object whose life a check follows with a weak reference (SHUT-8)."""

    def __init__(self, n: int) -> None:
        self.n = n


def tracked_copy(item: Tracked) -> Tracked:
    return Tracked(item.n)


# --- values that cannot travel ------------------------------------------------------


def unpicklable_result() -> Any:
    """A lock: a worker process cannot pickle it back."""
    return threading.Lock()


def unpicklable_result_of(_: object) -> Any:
    return threading.Lock()


def _refuse_to_unpickle() -> None:
    raise ValueError("refpool conform: this value refuses to be unpickled")


class Undecodable:
    """Pickles fine; unpickling it raises."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _refuse_to_unpickle, ()


def undecodable_result() -> Undecodable:
    return Undecodable()


class NeedsTwoArguments(Exception):
    """Pickles as (cls, (a,)), so unpickling calls cls(a) and fails with TypeError."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(a)
        self.b = b


def raise_undecodable() -> None:
    raise NeedsTwoArguments("a", "b")


class PicklesAsInt(Exception):
    """An exception that unpickles as the int 7."""

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return int, (7,)


def raise_non_exception() -> None:
    raise PicklesAsInt("refpool conform: this exception unpickles as an int")
