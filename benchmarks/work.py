"""What the benchmarks send to the pools, and what the parent does with the results.

Everything here is module-level so that spawned workers can import it by name.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

# Case 6's slow consumer compresses each 1 KB result this many times. zlib releases
# the GIL while it compresses, so the pool's own threads in the parent (which read
# and unpickle results) keep running at full speed, and only the consumer is slow:
# about 12 us an item on the reference machine, slower than the workers, so results
# pile up in a pool that does not apply back-pressure. A pure-Python loop would not
# do: it holds the GIL, starves the pool's result thread (5 ms switch interval),
# and makes the pool, not the consumer, the slow side (measured: nothing piles up).
CONSUMER_ROUNDS = 3
# Case 11: the file in which the task whose worker is killed leaves that worker's pid.
PID_FILE = "pid"


def magnitude(x: int) -> int:
    """The tiny task of cases 2, 4, 7 and 9."""
    return abs(x)


def nothing() -> None:
    """The no-op of cases 3, 8 and 10."""


def echo(item: bytes) -> bytes:
    """Case 6: send the 1 KB item back, so every result is 1 KB too."""
    return item


def spin(loops: int) -> int:
    """Pure-Python CPU work of case 5; `calibrate_spin` finds the loop count."""
    total = 0
    for i in range(loops):
        total += i
    return total


def spin_repeatedly(loops: int, times: int) -> None:
    """Case 5's ceiling: one bare process's share of the tasks, with no pool around it."""
    for _ in range(times):
        spin(loops)


def pause(seconds: float) -> float:
    """Case 10's long task and case 11's short ones: sleep, then say how long."""
    time.sleep(seconds)
    return seconds


def report_pid_and_pause(folder: str, seconds: float) -> None:
    """Case 11's task whose worker is killed: leave the worker's pid in `folder`, then sleep.

    The pid is written beside and renamed into place, so that the parent never reads half
    a file."""
    written = Path(folder, f"{PID_FILE}.partial")
    written.write_text(str(os.getpid()), encoding="ascii")
    os.replace(written, Path(folder, PID_FILE))
    time.sleep(seconds)


def consume_slowly(item: bytes) -> int:
    """Case 6's consumer: a small, fixed amount of GIL-free work (see CONSUMER_ROUNDS)."""
    size = 0
    for _ in range(CONSUMER_ROUNDS):
        size += len(zlib.compress(item))
    return size


def kilobyte_items(count: int) -> Iterator[bytes]:
    """Case 6's input: a generator of `count` fresh 1 KB bytes objects."""
    return (bytes(1024) for _ in range(count))


def calibrate_spin(seconds: float) -> int:
    """The loop count that makes `spin` take about `seconds` here, measured in this process."""
    loops = 10_000
    while _time_spin(loops) < 0.05:  # long enough that the clock's resolution does not matter
        loops *= 2
    best = min(_time_spin(loops) for _ in range(3))  # the least disturbed of three
    return max(1, round(loops * seconds / best))


def _time_spin(loops: int) -> float:
    start = time.perf_counter()
    spin(loops)
    return time.perf_counter() - start
