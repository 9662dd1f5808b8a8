"""Alternating repetitions, medians, ratios and the project's bars: the arithmetic of the suite.

Nothing here knows about pools: a participant is any named callable that returns one
sample (seconds, or MiB), raises NotApplicable when it has no equivalent of the case, or
raises Misbehaved when it breaks what the case requires (it hangs, it fails too many jobs).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

WORKERS = 2  # every case, every target

# The bars, for refpool: time within 10% of the stdlib's (cases 1, 2, 7), no
# slower than the stdlib where every task is one tiny call (cases 3, 4, 8, 9), and at least
# 90% of the ideal speed-up on CPU-bound work (case 5).
RATIO_BAR = 1.10
STRICT_RATIO_BAR = 1.00
EFFICIENCY_BAR = 0.90


class NotApplicable(Exception):
    """A target has no equivalent of what a case measures; the message says why."""


class Misbehaved(Exception):
    """A target broke what a case requires of every pool, with no error of the suite:
    it hangs, or it fails more jobs than it should. Its cell shows `status` ("hangs",
    "fails 1,001 of 1,001") and a footnote with `reason`."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class Bar(Enum):
    """What a row is judged by."""

    TIME_RATIO = f"refpool/stdlib time <= {RATIO_BAR:.2f}"
    STRICT_TIME_RATIO = f"refpool/stdlib time <= {STRICT_RATIO_BAR:.2f}"
    EFFICIENCY = f"efficiency >= {EFFICIENCY_BAR:.2f}"
    # Case 10: refpool's own median, below the long task's length (the row's limit).
    BEFORE_LONG_TASK = "the last no-op done before the long task ends"
    # Case 11: refpool has a value at all: one job failed, promptly, and none hung.
    ONE_JOB_FAILS = "one job fails, none hangs"
    INFORMATIONAL = "informational"

    @property
    def judges_ratio(self) -> bool:
        """Whether the bar judges refpool/stdlib; the others judge refpool's own value."""
        return self in (Bar.TIME_RATIO, Bar.STRICT_TIME_RATIO)


@dataclass
class Samples:
    """One row's measurements: a value per repetition for each participant that has one."""

    values: dict[str, list[float]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # participant -> why it has no number
    failed: list[str] = field(default_factory=list)  # participants that raised an error (a bug)
    statuses: dict[str, str] = field(default_factory=dict)  # participant -> "hangs", "fails N of M"

    def median(self, name: str) -> float | None:
        values = self.values.get(name)
        return statistics.median(values) if values else None


def rotations(names: Sequence[str], repeat: int) -> Iterator[list[str]]:
    """Each repetition runs every participant once, the order rotated by one each time,
    so that no participant always runs first (cold caches) or last (a warm machine)."""
    for repetition in range(repeat):
        shift = repetition % len(names) if names else 0
        yield [*names[shift:], *names[:shift]]


def measure_alternating(
    participants: Mapping[str, Callable[[], float]],
    repeat: int,
    progress: Callable[[str], None] | None = None,
) -> Samples:
    """Run every participant `repeat` times, alternating, and collect their samples.

    A participant that raises NotApplicable is asked no more. One that raises Misbehaved is
    asked no more either, its status recorded and its samples dropped: it is a finding
    about the pool, not an error of the suite. One that raises anything else is recorded
    as failed, its samples dropped, and the others go on.
    """
    samples = Samples()
    for order in rotations(list(participants), repeat):
        for name in order:
            if name in samples.missing:
                continue
            started = time.perf_counter()
            try:
                value = participants[name]()
            except NotApplicable as reason:
                samples.missing[name] = str(reason)
                continue
            except Misbehaved as misbehaviour:
                samples.statuses[name] = misbehaviour.status
                samples.missing[name] = misbehaviour.reason
                samples.values.pop(name, None)
                if progress is not None:
                    progress(f"{name}: {misbehaviour}")
                continue
            except Exception as error:  # a broken peer must not end a 10-minute run
                samples.missing[name] = f"failed: {type(error).__name__}: {error}"
                samples.failed.append(name)
                samples.values.pop(name, None)
                continue
            samples.values.setdefault(name, []).append(value)
            if progress is not None:
                progress(f"{name}: {value:.4g} (sample took {time.perf_counter() - started:.1f} s)")
    return samples


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """refpool's median over the stdlib's; None when either is missing."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def speed_up_and_efficiency(serial: float, pool: float, workers: int = WORKERS) -> tuple[float, float]:
    """Speed-up = serial time / pool time; efficiency = speed-up / workers (1.0 is ideal)."""
    speed_up = serial / pool
    return speed_up, speed_up / workers


def verdict(bar: Bar, value: float | None, limit: float | None = None) -> str:
    """Whether refpool's value meets its bar: refpool/stdlib for the time ratios, its
    efficiency, or its own median in seconds (cases 10 and 11; case 10's `limit` is the
    long task's length). A number is judged as printed, to two decimals, so that a table
    never shows "1.10 misses" (nor "1.50 s meets" against a 1.5 s task)."""
    if bar is Bar.INFORMATIONAL:
        return "informational"
    if value is None:
        return "-"
    shown = round(value, 2)
    if bar is Bar.TIME_RATIO:
        meets = shown <= RATIO_BAR
    elif bar is Bar.STRICT_TIME_RATIO:
        meets = shown <= STRICT_RATIO_BAR
    elif bar is Bar.EFFICIENCY:
        meets = shown >= EFFICIENCY_BAR
    elif bar is Bar.BEFORE_LONG_TASK:
        if limit is None:
            raise ValueError("the bar of case 10 needs the long task's length as its limit")
        meets = shown < limit
    else:  # Bar.ONE_JOB_FAILS: a value means that exactly one job failed, and promptly
        meets = True
    return "meets" if meets else "misses"


def stderr_progress(prefix: str) -> Callable[[str], None]:
    """Progress lines go to stderr, so that stdout holds only the table."""

    def say(message: str) -> None:
        print(f"[{prefix}] {message}", file=sys.stderr, flush=True)

    return say
