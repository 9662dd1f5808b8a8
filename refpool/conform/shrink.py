"""The fuzzer's last shrinking step: leave out every call the divergence does not need.

Pure: it knows nothing of pools; the fuzzer gives it a way to replay a shorter
script and say whether the same divergence remains (fuzz._drop_unneeded_calls).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def drop_unneeded(
    calls: Sequence[T], still_diverges: Callable[[list[T]], bool], out_of_time: Callable[[], bool]
) -> list[T]:
    """The calls with every call, then every run of identical calls, left out that still_diverges
    allows; repeated until nothing more can go (one deletion can make another possible) or time is out.

    Hypothesis shrinks the choices behind an example, and can stop where leaving out one
    call would change what the others draw; this deletes calls themselves.
    """
    kept = list(calls)
    while not out_of_time():
        before = kept
        position = 0
        while position < len(kept) and not out_of_time():
            shorter = kept[:position] + kept[position + 1 :]
            if still_diverges(shorter):
                kept = shorter  # the next call has moved to this position
            else:
                position += 1
        # Identical calls that are needed one by one may not be needed all together
        # (an even number of them, say).
        for start, end in _identical_runs(kept):
            if out_of_time():
                break
            shorter = kept[:start] + kept[end:]
            if still_diverges(shorter):
                kept = shorter
                break  # the positions after it have moved: look again from the start
        if kept == before:
            break
    return kept


def _identical_runs(calls: Sequence[T]) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of two or more equal calls in a row."""
    start = 0
    while start < len(calls):
        end = start + 1
        while end < len(calls) and calls[end] == calls[start]:
            end += 1
        if end - start > 1:
            yield start, end
        start = end
