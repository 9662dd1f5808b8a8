"""Functions that tests send to pools: module level, so spawn and forkserver workers can import them."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

# What the make_pool fixtures of conftest.py give: a factory of pools.
MakePool = Callable[..., Any]

# Set by `remember_queue`, the initializer of pools whose tasks report to the test.
_queue: Any = None


def remember_queue(queue: Any) -> None:
    global _queue
    _queue = queue


def square(x: int) -> int:
    return x * x


def add(a: int, b: int) -> int:
    return a + b


def identity(x: Any) -> Any:
    return x


def pid_of_worker(_: object = None) -> int:
    return os.getpid()


def fail_with_value_error(x: object) -> None:
    raise ValueError(f"bad value {x!r}")


def fail_on(x: int, bad: int = 3) -> int:
    if x == bad:
        raise ValueError(f"item {x} is bad")
    return x


def announce_and_wait(x: int, wait_on: int = 0) -> int:
    """For item `wait_on`: tell the test which pid runs it, then wait to be killed."""
    if x == wait_on:
        _queue.put(os.getpid())
        time.sleep(30)  # bounded: the test kills this worker long before
    return x


def wait_for_file(path: str, seconds: float = 30.0) -> str:
    """A task the test holds until it creates `path` (any start method can reach a file)."""
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.005)
    return path


def report_and_wait_for_file(path: str) -> int:
    """As wait_for_file, after telling the test (through the initializer's queue) which pid runs it."""
    _queue.put(os.getpid())
    wait_for_file(path)
    return os.getpid()


def current_thread_name(_: object = None) -> str:
    return threading.current_thread().name


def length(data: bytes) -> int:
    return len(data)


def exit_abruptly(code: int = 3) -> None:
    os._exit(code)


def kill_self_on(x: int, bad: int = 5) -> int:
    if x == bad:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def call_sys_exit(_: object = None) -> None:
    sys.exit(0)


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def unpicklable_result(_: object = None) -> Any:
    return threading.Lock()


class NeedsTwoArgs(Exception):
    """Pickles, but cannot be unpickled: BaseException.__reduce__ passes only `args`."""

    def __init__(self, a: object, b: object) -> None:
        super().__init__(a)
        self.b = b


def raise_needs_two_args(_: object = None) -> None:
    raise NeedsTwoArgs("first", "second")


class NotUnpicklable:
    def __reduce__(self) -> Any:
        return (_refuse, ())


def _refuse() -> None:
    raise RuntimeError("this object refuses to be unpickled")


def return_not_unpicklable(_: object = None) -> NotUnpicklable:
    return NotUnpicklable()


def failing_initializer() -> None:
    raise RuntimeError("initializer failed")


_initialized_with: Any = None


def record_initargs(*args: Any) -> None:
    global _initialized_with
    _initialized_with = args


def initialized_with(_: object = None) -> Any:
    return _initialized_with


def raising_generator(good: int) -> Any:
    yield from range(good)
    raise KeyError("input failed")


class UnpicklesAsAString(Exception):
    """An exception that arrives in the parent as a plain string."""

    def __reduce__(self) -> Any:
        return (str, ("not an exception",))


def raise_unpickles_as_a_string(_: object = None) -> None:
    raise UnpicklesAsAString()


def append_line(path: str, x: object) -> object:
    """Record that this task ran: one line per run, appended in one write (O_APPEND)."""
    with open(path, "a") as log:
        log.write(f"{x}\n")
    return x


def lines_of(path: str) -> list[str]:
    """What `append_line` recorded, in order; nothing if no task ran."""
    if not os.path.exists(path):
        return []
    with open(path) as log:
        return log.read().split()


def start_then_wait_for_file(started: str, path: str) -> int:
    """Create `started`, then wait for `path`: the test knows the task is running."""
    with open(started, "w"):
        pass
    wait_for_file(path)
    return os.getpid()


class StopsThenGoesOn:
    """An input whose third item is `stop`, raised (an error, or StopIteration: it ends), and
    which would go on yielding up to 10 items if asked again: `asked` shows whether it was."""

    def __init__(self, stop: BaseException) -> None:
        self.stop = stop
        self.asked = 0

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        self.asked += 1
        if self.asked == 3:
            raise self.stop
        if self.asked > 10:
            raise StopIteration
        return self.asked
