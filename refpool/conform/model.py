"""The caller's view of a pool, as an executable model: what each public call must do.

This model knows nothing of workers or threads. It says, for a sequence of
public calls, which ones the pool must refuse (LIFE-2, LIFE-3), what state it
is in afterwards, and what each accepted job must end with (API-1, API-2,
API-4, JOB-1, JOB-6). The differential fuzzer (fuzz.py) runs it beside any
pool with the multiprocessing.pool API; the Hypothesis stateful tests run it
beside refpool.

The transition table is written out here from the spec (spec/pool.md, LIFE-2),
not imported from refpool.lifecycle, so that the model can disagree with the code.

It also holds what a reproducer script needs: the functions sent to the
workers (module level, so that every start method can import them) and a few
helpers that turn an outcome into a value an `assert` can compare.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# LIFE-2, for the events a caller can cause; a missing pair is refused (LIFE-3).
TABLE: dict[tuple[str, str], str] = {
    ("RUN", "submit"): "RUN",
    ("RUN", "close"): "CLOSE",
    ("RUN", "terminate"): "TERMINATE",
    ("CLOSE", "close"): "CLOSE",
    ("CLOSE", "terminate"): "TERMINATE",
    ("CLOSE", "join"): "CLOSE",
    ("TERMINATE", "close"): "TERMINATE",
    ("TERMINATE", "terminate"): "TERMINATE",
    ("TERMINATE", "join"): "TERMINATE",
}
REFUSALS = {"submit": "Pool not running", "join": "Pool is still running"}


@dataclass(frozen=True)
class Expected:
    """What a job must end with: a value, or an exception of a type whose message contains a text."""

    value: Any = None
    error: type[BaseException] | None = None
    message: str = ""

    def matches(self, outcome: Any) -> bool:
        if self.error is None:
            return not isinstance(outcome, BaseException) and outcome == self.value
        return isinstance(outcome, self.error) and self.message in str(outcome)


class ApiModel:
    def __init__(self) -> None:
        self.state = "RUN"

    def call(self, event: str) -> str | None:
        """Apply a caller's event; returns the refusal message the pool must raise, or None."""
        after = TABLE.get((self.state, event))
        if after is None:
            return REFUSALS[event]
        self.state = after
        return None


# --- what the workers run ---------------------------------------------------


def square(x: int) -> int:
    return x * x


def square_or_fail(x: int, bad: int | None) -> int:
    if x == bad:
        raise ValueError(f"item {x} is bad")
    return x * x


def square_or_fail_pair(pair: tuple[int, int | None]) -> int:
    """For map and imap, whose function takes one argument."""
    return square_or_fail(*pair)


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def unpicklable_result() -> object:
    """A result a process worker cannot send back (ERR-1)."""
    return threading.Lock()


# --- what each job must end with --------------------------------------------


def expect_apply(x: int, bad: int | None) -> Expected:
    """API-1: apply returns f(*args), or raises what f raised."""
    if x == bad:
        return Expected(error=ValueError, message=f"item {x} is bad")
    return Expected(value=x * x)


def expect_map(xs: list[int], bad: int | None) -> Expected:
    """API-2, JOB-6: map returns the list in order, or fails with the first failure."""
    if bad is not None and bad in xs:
        return Expected(error=ValueError, message="is bad")
    return Expected(value=[x * x for x in xs])


def expect_imap(xs: list[int], bad: int | None) -> list[Expected]:
    """API-4: imap yields each item's outcome in input order."""
    return [expect_apply(x, bad) for x in xs]


# --- outcomes as values, for asserts in reproducer scripts -------------------


class Failed:
    """An outcome that is an exception, as a value: its type's name and its message.

    `Failed("PoolTerminatedError")` (no message) equals any outcome of that type.
    Comparing names, not classes, lets the model judge any pool, whose exceptions
    may be its own classes (a process pool re-raises the task's exception).
    """

    def __init__(self, kind: str, message: str | None = None) -> None:
        self.kind = kind
        self.message = message

    @classmethod
    def of(cls, error: BaseException) -> Failed:
        return cls(type(error).__name__, str(error))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Failed) or other.kind != self.kind:
            return False
        return self.message is None or other.message is None or self.message == other.message

    def __hash__(self) -> int:
        return hash(self.kind)

    def __repr__(self) -> str:
        if self.message is None:
            return f"Failed({self.kind!r})"
        return f"Failed({self.kind!r}, {self.message!r})"


TERMINATED = Failed("PoolTerminatedError")  # SHUT-5: what refpool fails an unsettled job with


def wanted(expected: Expected) -> Any:
    """The outcome `outcome()` must return for a job the model expects to end so.

    The model's map failures ("is bad") are exact here: square_or_fail fails
    every copy of the one bad item, so the first failed chunk says `item N is bad`.
    """
    if expected.error is None:
        return expected.value
    return Failed(expected.error.__name__, expected.message)


def want_map(xs: list[int], bad: int | None) -> Any:
    """What `outcome()` must return for map(square_or_fail_pair, ...) (API-2, JOB-6)."""
    if bad is not None and bad in xs:
        return Failed("ValueError", f"item {bad} is bad")
    return [x * x for x in xs]


def outcome(get: Callable[[float], Any], timeout: float) -> Any:
    """`get(timeout)`'s value, or Failed(...) for the exception it raised.

    multiprocessing.TimeoutError is not caught: a job that does not settle in
    time fails the script there. Nor is StopIteration, the end of an iterator.
    """
    try:
        return get(timeout)
    except (multiprocessing.TimeoutError, StopIteration):
        raise
    except Exception as error:
        return Failed.of(error)


def drain(iterator: Any, timeout: float, limit: int = 1000) -> list[Any]:
    """Every outcome an imap iterator yields, by `next(timeout)`, until it stops (API-4)."""
    outcomes: list[Any] = []
    while len(outcomes) < limit:
        try:
            outcomes.append(outcome(iterator.next, timeout))
        except StopIteration:
            return outcomes
    raise AssertionError(f"the iterator did not stop after {limit} items")


def unsettled_after(job: Any, seconds: float) -> bool:
    """JOB-2: whether `get(seconds)` raises multiprocessing.TimeoutError."""
    try:
        job.get(seconds)
    except multiprocessing.TimeoutError:
        return True
    except Exception:
        return False
    return False


@contextmanager
def refused(message: str) -> Iterator[None]:
    """LIFE-3: the block must raise ValueError(message)."""
    try:
        yield
    except ValueError as error:
        if str(error) != message:
            raise AssertionError(f"refused with ValueError({str(error)!r}), not {message!r}") from error
        return
    raise AssertionError(f"accepted, not refused with ValueError({message!r})")


def join_within(pool: Any, timeout: float) -> None:
    """SHUT-4: pool.join() must return within `timeout` seconds (it runs in a daemon thread)."""
    errors: list[BaseException] = []

    def join() -> None:
        try:
            pool.join()
        except BaseException as error:
            errors.append(error)

    joiner = threading.Thread(target=join, name="join_within", daemon=True)
    joiner.start()
    joiner.join(timeout)
    if joiner.is_alive():
        raise AssertionError(f"join() did not return within {timeout:g} s")
    if errors:
        raise errors[0]
