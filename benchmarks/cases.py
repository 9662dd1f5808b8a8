"""The seven cases of issue 5, each written once against the PoolAdapter interface.

A case gives one or more rows of the table. A row's `measure` takes one sample on one
target: it starts a fresh pool, warms it up with a tiny map (except case 1, which times
the start itself), times the operation alone, stops the pool, and checks the results.
"""

from __future__ import annotations

import gc
import multiprocessing
import pickle
import selectors
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from multiprocessing.connection import Connection
from typing import Final, TypeVar

from . import rss_probe, work
from .harness import WORKERS, Bar, NotApplicable
from .targets import THREAD, PoolAdapter, refpool_accepts_buffersize

R = TypeVar("R")

# The process pools of cases 2-6 all fork: the start method changes the cost of
# starting workers, which case 1 measures (fork and spawn), not the cost of using them.
PROCESS_METHOD: Final = "fork"
WARM_UP = range(4)
MAP_CHUNKSIZE = 1000  # case 2's second row
TASK_SECONDS = 0.010  # case 5: the length of one CPU-bound task
# Case 6: with chunksize=1 the pool's own per-task work in the parent is slower than any
# cheap consumer, so nothing piles up (measured); 64 items a task make the workers fast.
RSS_CHUNKSIZE = 64
RSS_BUFFERSIZE = 64


@dataclass(frozen=True)
class Sizes:
    map_items: int  # cases 2 and 7
    apply_calls: int  # case 3
    imap_items: int  # case 4
    cpu_tasks: int  # case 5
    rss_items: int  # case 6
    repeat: int
    rss_repeat: int  # case 6 takes longest, and its peak RSS varies little
    # Cases 1, 2 and 7 take milliseconds a sample, and vary by 10% between samples on a
    # busy machine: more repetitions keep their medians steady at little cost.
    short_repeat: int

    def scaled(self, factor: float) -> Sizes:
        """Every item count times `factor` (for the tests); repetitions unchanged."""

        def scale(count: int, least: int) -> int:
            return max(least, round(count * factor))

        return replace(
            self,
            map_items=scale(self.map_items, 2),
            apply_calls=scale(self.apply_calls, 2),
            imap_items=scale(self.imap_items, 2),
            cpu_tasks=scale(self.cpu_tasks, 2),
            rss_items=scale(self.rss_items, 1000),
        )


FULL = Sizes(200_000, 5_000, 20_000, 200, 2_000_000, repeat=5, rss_repeat=3, short_repeat=15)
QUICK = Sizes(20_000, 500, 2_000, 20, 50_000, repeat=2, rss_repeat=1, short_repeat=2)


class Unit(Enum):
    SECONDS = "s"
    MIB = "MiB"


@dataclass(frozen=True)
class Variant:
    """Another way to run refpool in the same row, measured in the same rotation."""

    name: str
    measure: Callable[[], float]


SERIAL = "serial"  # case 5's participants besides the targets
BARE = "bare processes"
FLOOR = "one task in flight"  # cases 3 and 4: the round trip of a bare process, no pool


@dataclass(frozen=True)
class Row:
    case: int
    label: str
    repeat: int
    measure: Callable[[PoolAdapter], float]  # one sample on one target
    unit: Unit = Unit.SECONDS
    bar: Bar = Bar.TIME_RATIO
    serial: Callable[[], float] | None = None  # case 5: the same work in the parent alone
    bare: Callable[[], float] | None = None  # case 5: the same work in WORKERS processes, no pool
    variant: Variant | None = None  # case 6: refpool with imap(buffersize=...)
    floor: Callable[[], float] | None = None  # cases 3, 4: one task in flight per bare process

    def participants(self, targets: Sequence[PoolAdapter]) -> dict[str, Callable[[], float]]:
        """Who takes part in this row's rotation: the targets, and the baselines or variant."""
        named: dict[str, Callable[[], float]] = {t.name: _bind(self.measure, t) for t in targets}
        if self.serial is not None:
            named[SERIAL] = self.serial
        if self.bare is not None:
            named[BARE] = self.bare
        if self.variant is not None and "refpool" in named:
            named[self.variant.name] = self.variant.measure
        if self.floor is not None:
            named[FLOOR] = self.floor
        return named


class WrongResult(RuntimeError):
    """A target returned results that are not those of the work sent to it."""


def _bind(measure: Callable[[PoolAdapter], float], target: PoolAdapter) -> Callable[[], float]:
    return lambda: measure(target)


def on_warm_pool(
    method: str, operation: Callable[[PoolAdapter], R], expected: Callable[[R], bool]
) -> Callable[[PoolAdapter], float]:
    """A measure that times `operation` on a fresh, warmed-up pool, then checks its result."""

    def measure(target: PoolAdapter) -> float:
        target.start(method)
        try:
            target.map(work.magnitude, WARM_UP, None)
            gc.collect()  # not in the middle of the next sample
            start = time.perf_counter()
            result = operation(target)
            seconds = time.perf_counter() - start
        finally:
            target.stop()
        if not expected(result):
            raise WrongResult(f"{target.name} returned wrong results")
        return seconds

    return measure


def startup_rows(sizes: Sizes, spin_loops: int) -> list[Row]:
    """Case 1: create an empty pool, close it, join it; with fork, then with spawn."""

    def startup(method: str) -> Callable[[PoolAdapter], float]:
        def measure(target: PoolAdapter) -> float:
            if target.starts_workers_lazily:
                raise NotApplicable(
                    f"{target.name} starts its workers at the first task: an empty pool has none"
                )
            gc.collect()
            start = time.perf_counter()
            target.start(method)
            target.stop()
            return time.perf_counter() - start

        return measure

    label = "1. start, close and join an empty pool, {}"
    return [Row(1, label.format(method), sizes.short_repeat, startup(method)) for method in ("fork", "spawn")]


def map_rows(sizes: Sizes, spin_loops: int) -> list[Row]:
    """Case 2: map over many tiny items, with the default chunksize and with a large one."""
    items = [-i for i in range(sizes.map_items)]
    want = [abs(i) for i in items]

    def mapping(chunksize: int | None) -> Callable[[PoolAdapter], float]:
        def operation(target: PoolAdapter) -> list[int]:
            return target.map(work.magnitude, items, chunksize)

        return on_warm_pool(PROCESS_METHOD, operation, want.__eq__)

    label = f"2. map, {sizes.map_items:,} tiny items, "
    return [
        Row(2, label + "default chunksize", sizes.short_repeat, mapping(None)),
        Row(2, label + f"chunksize={MAP_CHUNKSIZE}", sizes.short_repeat, mapping(MAP_CHUNKSIZE)),
    ]


def one_task_in_flight(count: int) -> Callable[[], float]:
    """The least time any pool that gives each worker one task at a time, and waits for its
    outcome before sending the next (as refpool does, for WORK-5 and exact task ownership),
    can take for `count` tiny tasks here: WORKERS bare processes answering over pipes, and a
    parent that does nothing but keep each of them busy. The stdlib's shared queue lets a
    worker take its next task without this round trip."""

    def measure() -> float:
        context = multiprocessing.get_context(PROCESS_METHOD)
        ends = [(context.Pipe(duplex=False), context.Pipe(duplex=False)) for _ in range(WORKERS)]
        processes = [
            context.Process(target=work.answer_calls, args=(inbox_r, outbox_w))
            for (inbox_r, _), (_, outbox_w) in ends
        ]
        for process in processes:
            process.start()
        inboxes = {outbox_r: inbox_w for (_, inbox_w), (outbox_r, _) in ends}
        task = pickle.dumps((work.magnitude, -1))
        with selectors.DefaultSelector() as selector:
            for reader in inboxes:
                selector.register(reader, selectors.EVENT_READ)
            gc.collect()
            start = time.perf_counter()
            sent = received = 0
            for inbox in inboxes.values():
                inbox.send_bytes(task)
                sent += 1
            while received < count:
                for key, _ in selector.select():
                    ready = key.fileobj
                    assert isinstance(ready, Connection)
                    pickle.loads(ready.recv_bytes())
                    received += 1
                    if sent < count:
                        inboxes[ready].send_bytes(task)
                        sent += 1
            seconds = time.perf_counter() - start
        for inbox in inboxes.values():
            inbox.send_bytes(b"")
        for process in processes:
            process.join()
        if received != count or any(process.exitcode != 0 for process in processes):
            raise WrongResult("a bare process failed")
        return seconds

    return measure


def apply_rows(sizes: Sizes, spin_loops: int) -> list[Row]:
    """Case 3: many apply_async calls submitted at once, then every result collected."""
    calls = sizes.apply_calls
    want: list[object] = [None] * calls

    def operation(target: PoolAdapter) -> list[object]:
        return target.submit_all_and_collect(work.nothing, calls)

    label = f"3. {calls:,} apply_async no-ops at once, then every get()"
    measure = on_warm_pool(PROCESS_METHOD, operation, want.__eq__)
    return [Row(3, label, sizes.repeat, measure, floor=one_task_in_flight(calls))]


def imap_rows(sizes: Sizes, spin_loops: int) -> list[Row]:
    """Case 4: imap one item a task: the pool's overhead per task."""
    items = [-i for i in range(sizes.imap_items)]
    want = [abs(i) for i in items]

    def operation(target: PoolAdapter) -> list[int]:
        return list(target.imap(work.magnitude, items, 1))

    label = f"4. imap, {sizes.imap_items:,} tiny items, chunksize=1"
    measure = on_warm_pool(PROCESS_METHOD, operation, want.__eq__)
    return [Row(4, label, sizes.repeat, measure, floor=one_task_in_flight(sizes.imap_items))]


def cpu_bound_rows(sizes: Sizes, spin_loops: int) -> list[Row]:
    """Case 5: CPU-bound tasks, against the serial time of the same calls in the parent."""
    tasks = [spin_loops] * sizes.cpu_tasks
    want = [work.spin(spin_loops)] * sizes.cpu_tasks

    def operation(target: PoolAdapter) -> list[int]:
        return target.map(work.spin, tasks, 1)

    def serial() -> float:
        gc.collect()
        start = time.perf_counter()
        results = [work.spin(loops) for loops in tasks]
        seconds = time.perf_counter() - start
        if results != want:
            raise WrongResult("the serial run returned wrong results")
        return seconds

    def bare() -> float:
        # What the machine itself allows: the tasks split between WORKERS plain processes,
        # with no pool and nothing sent back. No pool can do better than this.
        context = multiprocessing.get_context(PROCESS_METHOD)
        shares = [len(tasks[i::WORKERS]) for i in range(WORKERS)]
        processes = [context.Process(target=work.spin_repeatedly, args=(spin_loops, n)) for n in shares]
        gc.collect()
        start = time.perf_counter()
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        seconds = time.perf_counter() - start
        if any(process.exitcode != 0 for process in processes):
            raise WrongResult("a bare process failed")
        return seconds

    label = f"5. CPU-bound map, {sizes.cpu_tasks:,} tasks of {TASK_SECONDS * 1000:.0f} ms, chunksize=1"
    measure = on_warm_pool(PROCESS_METHOD, operation, want.__eq__)
    return [Row(5, label, sizes.repeat, measure, bar=Bar.EFFICIENCY, serial=serial, bare=bare)]


def rss_rows(sizes: Sizes, spin_loops: int) -> list[Row]:
    """Case 6: the peak RSS of a fresh parent process while imap feeds a slow consumer."""
    items = sizes.rss_items

    def measure(target: PoolAdapter) -> float:
        return rss_probe.peak_rss_mib(target.name, items, RSS_CHUNKSIZE)

    def with_buffersize() -> float:
        if not refpool_accepts_buffersize():
            raise NotApplicable("refpool has no buffersize yet")
        return rss_probe.peak_rss_mib("refpool", items, RSS_CHUNKSIZE, RSS_BUFFERSIZE)

    label = f"6. parent peak RSS, imap over {items:,} items of 1 KB, chunksize={RSS_CHUNKSIZE}, slow consumer"
    variant = Variant(f"refpool, buffersize={RSS_BUFFERSIZE}", with_buffersize)
    return [Row(6, label, sizes.rss_repeat, measure, Unit.MIB, Bar.INFORMATIONAL, variant=variant)]


def thread_rows(sizes: Sizes, spin_loops: int) -> list[Row]:
    """Case 7: case 2's default row on thread pools."""
    items = [-i for i in range(sizes.map_items)]
    want = [abs(i) for i in items]

    def operation(target: PoolAdapter) -> list[int]:
        return target.map(work.magnitude, items, None)

    label = f"7. ThreadPool map, {sizes.map_items:,} tiny items, default chunksize"
    measure = on_warm_pool(THREAD, operation, want.__eq__)
    return [Row(7, label, sizes.short_repeat, measure)]


# Every case's rows, from the sizes and case 5's calibrated loop count.
CASES: dict[int, Callable[[Sizes, int], list[Row]]] = {
    1: startup_rows,
    2: map_rows,
    3: apply_rows,
    4: imap_rows,
    5: cpu_bound_rows,
    6: rss_rows,
    7: thread_rows,
}


def rows(cases: Iterable[int], sizes: Sizes, spin_loops: int) -> list[Row]:
    return [row for case in cases for row in CASES[case](sizes, spin_loops)]
