"""What the benchmarks send to the pools, and what the parent does with the results.

Everything here is module-level so that spawned workers can import it by name.
"""

from __future__ import annotations

import pickle
import time
import zlib
from collections.abc import Iterator
from multiprocessing.connection import Connection

# Case 6's slow consumer compresses each 1 KB result this many times. zlib releases
# the GIL while it compresses, so the pool's own threads in the parent (which read
# and unpickle results) keep running at full speed, and only the consumer is slow:
# about 12 us an item on the reference machine, slower than the workers, so results
# pile up in a pool that does not apply back-pressure. A pure-Python loop would not
# do: it holds the GIL, starves the pool's result thread (5 ms switch interval),
# and makes the pool, not the consumer, the slow side (measured: nothing piles up).
CONSUMER_ROUNDS = 3


def magnitude(x: int) -> int:
    """The tiny task of cases 2, 4 and 7."""
    return abs(x)


def nothing() -> None:
    """The no-op of case 3."""


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


def answer_calls(inbox: Connection, outbox: Connection) -> None:
    """The floor of cases 3 and 4: a bare process that runs each pickled (func, arg) it
    receives and sends the pickled result back, one at a time, until an empty message."""
    while message := inbox.recv_bytes():
        func, arg = pickle.loads(message)
        outbox.send_bytes(pickle.dumps(func(arg)))


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
