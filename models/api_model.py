"""The caller's view of a pool, as an executable model: what each call must do.

This model knows nothing of workers or threads. It says, for a sequence of
public calls, which ones the pool must refuse (LIFE-2, LIFE-3), what state it
is in afterwards, and what each accepted job must end with (API-1, API-2,
API-4, JOB-1). The Hypothesis stateful tests run it beside a real pool and
compare; the conformance oracle can run it beside any pool.

The transition table is written out here from the spec (spec/pool.md, LIFE-2),
not imported from refpool, so that the model can disagree with the code.
"""

from __future__ import annotations

import time
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


def square(x: int) -> int:
    return x * x


def square_or_fail(x: int, bad: int | None) -> int:
    if x == bad:
        raise ValueError(f"item {x} is bad")
    return x * x


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def unpicklable_result() -> object:
    """A result a process worker cannot send back (ERR-1)."""
    import threading

    return threading.Lock()


def square_or_fail_pair(pair: tuple[int, int | None]) -> int:
    """For imap, whose function takes one argument."""
    return square_or_fail(*pair)


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
