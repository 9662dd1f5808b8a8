"""The eleven cases, each written once against the PoolAdapter interface.

A case gives one or more rows of the table. A row's `measure` takes one sample on one
target: it starts a fresh pool, warms it up with a tiny map (except case 1, which times
the start itself), times the operation alone, stops the pool, and checks the results.
Cases 10 and 11 check more than results: a pool that hangs, or fails more jobs than the
one whose worker was killed, raises Misbehaved, and its cell says so.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, Final, TypeVar

from . import rss_probe, work
from .harness import WORKERS, Bar, Misbehaved, NotApplicable
from .targets import THREAD, Getter, PoolAdapter, refpool_accepts_buffersize

R = TypeVar("R")

# The process pools of cases 2-6, 10 and 11 all fork: the start method changes the cost of
# starting workers, which case 1 measures (fork and spawn), not the cost of using them.
PROCESS_METHOD: Final = "fork"
WARM_UP = range(4)
MAP_CHUNKSIZE = 1000  # case 2's second row
TASK_SECONDS = 0.010  # case 5: the length of one CPU-bound task
# Case 6: with chunksize=1 the pool's own per-task work in the parent is slower than any
# cheap consumer, so nothing piles up (measured); 64 items a task make the workers fast.
RSS_CHUNKSIZE = 64
RSS_BUFFERSIZE = 64
# Case 6's refpool with buffersize runs over the case's input and over this fraction of it:
# with the input bounded by what the consumer has taken (BUF-1), both have the same peak RSS.
RSS_SHORTER_INPUT = 10
# Case 11: the task whose worker is killed would sleep this long (it is killed long before),
# and the short tasks queued behind it sleep 1 ms each, so that many are still queued, some
# of them maybe sent to that worker already, when the kill comes.
KILLED_TASK_SECONDS = 60.0
SHORT_TASK_SECONDS = 0.001
# What --scale leaves of case 10's long task and of the waits of cases 10 and 11 at least:
# enough for a pool on a busy machine to answer, so that only a pool that hangs shows "hangs".
LEAST_LONG_TASK_SECONDS = 0.2
LEAST_ANSWER_SECONDS = 2.0


@dataclass(frozen=True)
class Sizes:
    map_items: int  # cases 2 and 7
    apply_calls: int  # cases 3 and 8
    imap_items: int  # cases 4 and 9
    cpu_tasks: int  # case 5
    rss_items: int  # case 6
    noops: int  # case 10: the no-ops submitted behind the long task
    short_tasks: int  # case 11: the tasks submitted behind the one whose worker is killed
    repeat: int
    rss_repeat: int  # case 6 takes longest, and its peak RSS varies little
    # Cases 1, 2 and 7 take milliseconds a sample, and vary by 10% between samples on a
    # busy machine: more repetitions keep their medians steady at little cost.
    short_repeat: int
    long_task_seconds: float  # case 10: the task that the no-ops must not wait behind
    # Cases 10 and 11: a pool that gives no answer this long after it should have, hangs.
    # The stdlib hangs in case 11 (bpo-22393), so its sample costs this once a run.
    answer_seconds: float

    def scaled(self, factor: float) -> Sizes:
        """Every item count, case 10's long task and the waits of cases 10 and 11 times
        `factor` (for the tests), none below its least (the LEAST_ constants); repetitions unchanged."""

        def scale(count: int, least: int) -> int:
            return max(least, round(count * factor))

        return replace(
            self,
            map_items=scale(self.map_items, 2),
            apply_calls=scale(self.apply_calls, 2),
            imap_items=scale(self.imap_items, 2),
            cpu_tasks=scale(self.cpu_tasks, 2),
            rss_items=scale(self.rss_items, 1000),
            noops=scale(self.noops, 2),
            short_tasks=scale(self.short_tasks, 2),
            long_task_seconds=max(LEAST_LONG_TASK_SECONDS, self.long_task_seconds * factor),
            answer_seconds=max(LEAST_ANSWER_SECONDS, self.answer_seconds * factor),
        )


FULL = Sizes(
    200_000, 5_000, 20_000, 200, 2_000_000, 300, 1_000,
    repeat=5, rss_repeat=3, short_repeat=15, long_task_seconds=1.5, answer_seconds=5.0,
)  # fmt: skip
QUICK = Sizes(
    20_000, 500, 2_000, 20, 50_000, 30, 100,
    repeat=2, rss_repeat=1, short_repeat=2, long_task_seconds=1.5, answer_seconds=3.0,
)  # fmt: skip


class Unit(Enum):
    SECONDS = "s"
    MIB = "MiB"


@dataclass(frozen=True)
class Variant:
    """Another way to run refpool in the same row, measured in the same rotation, with a line
    of its own: `label` after the case number ("the same, refpool, buffersize=64")."""

    name: str
    measure: Callable[[], float]
    label: str
    compared: bool = True  # whether its ratio to the stdlib's value means something (same work)


SERIAL = "serial"  # case 5's participants besides the targets
BARE = "bare processes"


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
    variants: tuple[Variant, ...] = ()  # case 6: refpool with imap(buffersize=...), two input lengths
    limit: float | None = None  # case 10: refpool's median must be below this (seconds)

    def participants(self, targets: Sequence[PoolAdapter]) -> dict[str, Callable[[], float]]:
        """Who takes part in this row's rotation: the targets, and the baselines or variant."""
        named: dict[str, Callable[[], float]] = {t.name: _bind(self.measure, t) for t in targets}
        if self.serial is not None:
            named[SERIAL] = self.serial
        if self.bare is not None:
            named[BARE] = self.bare
        if "refpool" in named:
            named.update((variant.name, variant.measure) for variant in self.variants)
        return named


class WrongResult(RuntimeError):
    """A target returned results that are not those of the work sent to it."""


def _bind(measure: Callable[[PoolAdapter], float], target: PoolAdapter) -> Callable[[], float]:
    return lambda: measure(target)


def warm_up(target: PoolAdapter) -> None:
    """A tiny map on the fresh pool, so that its workers are up before the clock starts."""
    target.map(work.magnitude, WARM_UP, None)
    gc.collect()  # not in the middle of the next sample


def on_warm_pool(
    method: str, operation: Callable[[PoolAdapter], R], expected: Callable[[R], bool]
) -> Callable[[PoolAdapter], float]:
    """A measure that times `operation` on a fresh, warmed-up pool, then checks its result."""

    def measure(target: PoolAdapter) -> float:
        target.start(method)
        try:
            warm_up(target)
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


def apply_measure(method: str, calls: int) -> Callable[[PoolAdapter], float]:
    """Cases 3 and 8: `calls` apply_async no-ops submitted at once, then every get()."""
    want: list[object] = [None] * calls

    def operation(target: PoolAdapter) -> list[object]:
        return target.submit_all_and_collect(work.nothing, calls)

    return on_warm_pool(method, operation, want.__eq__)


def imap_measure(method: str, count: int) -> Callable[[PoolAdapter], float]:
    """Cases 4 and 9: imap over `count` tiny items, one item a task."""
    items = [-i for i in range(count)]
    want = [abs(i) for i in items]

    def operation(target: PoolAdapter) -> list[int]:
        return list(target.imap(work.magnitude, items, 1))

    return on_warm_pool(method, operation, want.__eq__)


def apply_rows(sizes: Sizes, spin_loops: int) -> list[Row]:
    """Case 3: many apply_async calls submitted at once, then every result collected."""
    label = f"3. {sizes.apply_calls:,} apply_async no-ops at once, then every get()"
    measure = apply_measure(PROCESS_METHOD, sizes.apply_calls)
    return [Row(3, label, sizes.repeat, measure, bar=Bar.STRICT_TIME_RATIO)]


def imap_rows(sizes: Sizes, spin_loops: int) -> list[Row]:
    """Case 4: imap one item a task: the pool's overhead per task."""
    label = f"4. imap, {sizes.imap_items:,} tiny items, chunksize=1"
    measure = imap_measure(PROCESS_METHOD, sizes.imap_items)
    return [Row(4, label, sizes.repeat, measure, bar=Bar.STRICT_TIME_RATIO)]


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
    """Case 6: the peak RSS of a fresh parent process while imap feeds a slow consumer.

    refpool also runs with imap(buffersize=RSS_BUFFERSIZE), over the case's input and over a
    tenth of it: a bounded imap holds the same whatever the input's length (a flat line).
    """
    items = sizes.rss_items
    fewer = shorter_rss_input(items)

    def measure(target: PoolAdapter) -> float:
        return rss_probe.peak_rss_mib(target.name, items, RSS_CHUNKSIZE)

    def with_buffersize(count: int) -> Callable[[], float]:
        def measure_buffered() -> float:
            if not refpool_accepts_buffersize():
                raise NotApplicable("refpool has no buffersize yet")
            return rss_probe.peak_rss_mib("refpool", count, RSS_CHUNKSIZE, RSS_BUFFERSIZE)

        return measure_buffered

    label = f"6. parent peak RSS, imap over {items:,} items of 1 KB, chunksize={RSS_CHUNKSIZE}, slow consumer"
    name = f"refpool, buffersize={RSS_BUFFERSIZE}"
    variants = (
        Variant(name, with_buffersize(items), f"the same, {name}"),
        Variant(
            f"{name}, {fewer:,} items",
            with_buffersize(fewer),
            f"the same over {fewer:,} items, {name}",
            compared=False,  # the stdlib ran over the longer input
        ),
    )
    return [Row(6, label, sizes.rss_repeat, measure, Unit.MIB, Bar.INFORMATIONAL, variants=variants)]


def shorter_rss_input(items: int) -> int:
    """Case 6's shorter input for refpool with buffersize: a tenth, and never under 1,000 items."""
    return max(1000, items // RSS_SHORTER_INPUT)


def thread_rows(sizes: Sizes, spin_loops: int) -> list[Row]:
    """Case 7: case 2's default row on thread pools."""
    items = [-i for i in range(sizes.map_items)]
    want = [abs(i) for i in items]

    def operation(target: PoolAdapter) -> list[int]:
        return target.map(work.magnitude, items, None)

    label = f"7. ThreadPool map, {sizes.map_items:,} tiny items, default chunksize"
    measure = on_warm_pool(THREAD, operation, want.__eq__)
    return [Row(7, label, sizes.short_repeat, measure)]


def thread_apply_rows(sizes: Sizes, spin_loops: int) -> list[Row]:
    """Case 8: case 3 on thread pools."""
    label = f"8. ThreadPool, {sizes.apply_calls:,} apply_async no-ops at once, then every get()"
    measure = apply_measure(THREAD, sizes.apply_calls)
    return [Row(8, label, sizes.repeat, measure, bar=Bar.STRICT_TIME_RATIO)]


def thread_imap_rows(sizes: Sizes, spin_loops: int) -> list[Row]:
    """Case 9: case 4 on thread pools."""
    label = f"9. ThreadPool imap, {sizes.imap_items:,} tiny items, chunksize=1"
    measure = imap_measure(THREAD, sizes.imap_items)
    return [Row(9, label, sizes.repeat, measure, bar=Bar.STRICT_TIME_RATIO)]


def answer(get: Getter, seconds: float, what: str) -> Any:
    """The outcome of one submitted call; a pool that gives none within `seconds` hangs."""
    try:
        return get(seconds)
    except TimeoutError:
        raise Misbehaved("hangs", f"{what}: no answer within {seconds:g} s") from None


def stop_or_terminate(target: PoolAdapter, answered: bool) -> None:
    """Stop a pool that answered everything; terminate one that did not, whose close() and
    join() would wait for its unanswered jobs, forever in the stdlib's case (bpo-22393)."""
    if answered:
        target.stop()
    else:
        target.terminate()


def head_of_line_rows(sizes: Sizes, spin_loops: int) -> list[Row]:
    """Case 10: no-ops submitted behind one long task, while the other worker is free, must
    not wait for the long task. The sample runs from the first submission until the last
    no-op's result has been got; then the long task is waited for, before the pool stops."""
    long_seconds, noops = sizes.long_task_seconds, sizes.noops
    bound = long_seconds + sizes.answer_seconds  # no pool needs longer for any of them
    want: list[object] = [None] * noops

    def measure(target: PoolAdapter) -> float:
        target.start(PROCESS_METHOD)
        answered = False
        try:
            warm_up(target)
            start = time.perf_counter()
            long_task = target.submit(work.pause, long_seconds)
            pending = [target.submit(work.nothing) for _ in range(noops)]
            results = [answer(get, bound, "a no-op") for get in pending]
            seconds = time.perf_counter() - start
            long_result = answer(long_task, bound, "the long task")
            answered = True
        finally:
            stop_or_terminate(target, answered)
        if results != want or long_result != long_seconds:
            raise WrongResult(f"{target.name} returned wrong results")
        return seconds

    label = (
        f"10. head of line: a {long_seconds:.1f} s task, then {noops:,} no-ops, until the last one's result"
    )
    return [Row(10, label, sizes.repeat, measure, bar=Bar.BEFORE_LONG_TASK, limit=long_seconds)]


def killed_worker_pid(folder: Path, bound: float) -> int:
    """The pid that case 11's first task leaves in `folder` once it runs. Polled: there is
    no event to wait for across processes that every pool offers."""
    deadline = time.monotonic() + bound
    pid_file = folder / work.PID_FILE
    while not pid_file.exists():
        if time.monotonic() > deadline:
            raise Misbehaved("hangs", f"the first task had not started {bound:g} s after it was submitted")
        time.sleep(0.001)
    pid = int(pid_file.read_text(encoding="ascii"))
    if pid == os.getpid():  # never SIGKILL the benchmark itself
        raise WrongResult("the first task ran in the parent, not in a worker")
    return pid


def failure_after_kill(killed_job: Getter, bound: float) -> float:
    """Seconds from now, just after the kill, until the killed task's job raises."""
    killed = time.perf_counter()
    try:
        killed_job(bound)
    except TimeoutError:
        raise Misbehaved("hangs", f"no answer {bound:g} s after the kill") from None
    except Exception:  # whichever error the pool reports a lost worker with
        return time.perf_counter() - killed
    raise WrongResult("the killed task's job returned a value")


def check_short_jobs(pending: Sequence[Getter], bound: float) -> None:
    """Every short job must succeed: none fails with the killed one, none is left hanging.

    One deadline for all of them, not a bound for each: the bound, plus the time the short
    tasks would take one after another (more than 2 workers need for what is left)."""
    deadline = time.monotonic() + bound + len(pending) * SHORT_TASK_SECONDS
    failed: list[str] = []
    hung = 0
    for get in pending:
        try:
            result = get(max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            hung += 1
        except Exception as error:
            failed.append(type(error).__name__)
        else:
            if result != SHORT_TASK_SECONDS:
                raise WrongResult("a short task returned a wrong result")
    total = len(pending) + 1
    if hung:
        unanswered = f"{hung:,} of the {len(pending):,} jobs queued behind the killed task"
        raise Misbehaved("hangs", f"{unanswered}: no answer {bound:g} s after the kill")
    if failed:
        errors = ", ".join(sorted(set(failed)))
        also = f"{len(failed):,} of the {len(pending):,} jobs queued behind it"
        raise Misbehaved(
            f"fails {len(failed) + 1:,} of {total:,}", f"the killed task's job, and {also} ({errors})"
        )


def lost_worker_rows(sizes: Sizes, spin_loops: int) -> list[Row]:
    """Case 11: a worker is SIGKILLed while it runs a task, with short tasks queued behind it.
    That task's job must fail, promptly, and it alone: the sample runs from the kill until
    it raises. Then every short job must succeed, all within one bounded wait."""
    count, bound = sizes.short_tasks, sizes.answer_seconds

    def measure(target: PoolAdapter) -> float:
        target.start(PROCESS_METHOD)
        answered = False
        try:
            warm_up(target)
            with tempfile.TemporaryDirectory(prefix="refpool-benchmark-") as folder:
                killed_job = target.submit(work.report_pid_and_pause, folder, KILLED_TASK_SECONDS)
                pending = [target.submit(work.pause, SHORT_TASK_SECONDS) for _ in range(count)]
                os.kill(killed_worker_pid(Path(folder), bound), signal.SIGKILL)
                seconds = failure_after_kill(killed_job, bound)
                check_short_jobs(pending, bound)
            answered = True
        finally:
            stop_or_terminate(target, answered)
        return seconds

    label = (
        f"11. a worker SIGKILLed in a task, {count:,} short tasks queued: from the kill to its job's error"
    )
    return [Row(11, label, sizes.repeat, measure, bar=Bar.ONE_JOB_FAILS)]


# Every case's rows, from the sizes and case 5's calibrated loop count.
CASES: dict[int, Callable[[Sizes, int], list[Row]]] = {
    1: startup_rows,
    2: map_rows,
    3: apply_rows,
    4: imap_rows,
    5: cpu_bound_rows,
    6: rss_rows,
    7: thread_rows,
    8: thread_apply_rows,
    9: thread_imap_rows,
    10: head_of_line_rows,
    11: lost_worker_rows,
}


def rows(cases: Iterable[int], sizes: Sizes, spin_loops: int) -> list[Row]:
    return [row for case in cases for row in CASES[case](sizes, spin_loops)]
