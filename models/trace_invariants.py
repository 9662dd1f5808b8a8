"""The spec's invariants, checked on the trace a real pool reports to its observer.

`check_trace` replays the observations (refpool/observer.py) in order over a
small bookkeeping state (who is alive, who holds which task, who was sent a
sentinel) and returns one message per broken rule, each starting with the ID
of the spec clause it breaks. `check_final` adds what must hold once the pool
has been joined. The stateful tests call both after every step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from refpool.lifecycle import PoolState
from refpool.observer import (
    Observation,
    OutcomeDelivered,
    SentinelSent,
    ShutdownBegun,
    StateChanged,
    TaskHandedOut,
    WorkerExited,
    WorkerStarted,
)

TaskKey = tuple[int, int]


@dataclass
class TraceState:
    processes: int
    maxtasks: int | None
    depth: int = 1
    state: PoolState = PoolState.INIT
    closed: bool = False  # close() was called (the state may have moved on to TERMINATE)
    live: set[int] = field(default_factory=set)
    ever_started: set[int] = field(default_factory=set)
    held: dict[int, set[TaskKey]] = field(default_factory=dict)
    handed_out: dict[int, int] = field(default_factory=dict)
    handed: set[TaskKey] = field(default_factory=set)
    ended: set[TaskKey] = field(default_factory=set)  # delivered, or lost with its worker
    shutdown: ShutdownBegun | None = None
    sentinels: dict[int, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.violations.append(message)


def check_trace(
    trace: Iterable[Observation], processes: int, maxtasks: int | None, depth: int = 1
) -> TraceState:
    """Replay the trace; the returned state lists the violations found on the way."""
    book = TraceState(processes, maxtasks, depth)
    for observation in list(trace):
        _apply(book, observation)
    return book


def _apply(book: TraceState, seen: Observation) -> None:
    if isinstance(seen, StateChanged):
        if seen.before is not book.state:
            book.fail(f"LIFE-2: state changed from {seen.before} but the pool was in {book.state}")
        book.state = seen.after
        book.closed = book.closed or seen.after is PoolState.CLOSE
    elif isinstance(seen, WorkerStarted):
        if book.shutdown is not None or book.state is PoolState.TERMINATE:
            book.fail(f"WORK-2: worker {seen.worker_id} started after shutdown began or terminate")
        if seen.worker_id in book.ever_started:
            book.fail(f"WORK-1: worker id {seen.worker_id} started twice")
        book.live.add(seen.worker_id)
        book.ever_started.add(seen.worker_id)
        book.held[seen.worker_id] = set()
        if len(book.live) > book.processes:
            book.fail(f"WORK-1: {len(book.live)} live workers, more than processes={book.processes}")
    elif isinstance(seen, TaskHandedOut):
        _hand_out(book, seen)
    elif isinstance(seen, OutcomeDelivered):
        key = (seen.job_id, seen.position)
        if key not in book.held.get(seen.worker_id, set()):
            book.fail(f"WORK-3: outcome of task {key} from worker {seen.worker_id}, which did not hold it")
        _end(book, key)
        book.held.get(seen.worker_id, set()).discard(key)
    elif isinstance(seen, WorkerExited):
        held = book.held.pop(seen.worker_id, set())
        if set(seen.lost) != held:
            lost = sorted(seen.lost)
            book.fail(f"LOST-1: worker {seen.worker_id} exited holding {sorted(held)}, reported lost {lost}")
        for key in seen.lost:
            _end(book, key)
        book.live.discard(seen.worker_id)
    elif isinstance(seen, ShutdownBegun):
        _begin_shutdown(book, seen)
    elif isinstance(seen, SentinelSent):
        book.sentinels[seen.worker_id] = book.sentinels.get(seen.worker_id, 0) + 1
        if book.sentinels[seen.worker_id] > 1:
            book.fail(f"SHUT-2: worker {seen.worker_id} was sent a second sentinel")
        if book.shutdown is None or seen.worker_id not in book.shutdown.sentinel_to:
            book.fail(f"SHUT-2: sentinel to worker {seen.worker_id}, which was not due one")


def _hand_out(book: TraceState, seen: TaskHandedOut) -> None:
    key = (seen.job_id, seen.position)
    worker = seen.worker_id
    if book.shutdown is not None:
        book.fail(f"SHUT-1: task {key} handed out after the sentinels")
    if worker not in book.live:
        book.fail(f"WORK-3: task {key} handed to worker {worker}, which is not live")
    if key in book.handed:
        book.fail(f"WORK-3: task {key} handed out twice")
    book.handed.add(key)
    book.held.setdefault(worker, set()).add(key)
    if len(book.held[worker]) > book.depth:
        book.fail(f"WORK-3: worker {worker} holds {len(book.held[worker])} tasks, more than {book.depth}")
    book.handed_out[worker] = book.handed_out.get(worker, 0) + 1
    if book.maxtasks is not None and book.handed_out[worker] > book.maxtasks:
        book.fail(f"WORK-3: worker {worker} was handed more than maxtasksperchild={book.maxtasks}")


def _end(book: TraceState, key: TaskKey) -> None:
    if key in book.ended:
        book.fail(f"JOB-1: task {key} ended twice")
    if key not in book.handed:
        book.fail(f"WORK-3: task {key} ended but was never handed out")
    book.ended.add(key)


def _begin_shutdown(book: TraceState, seen: ShutdownBegun) -> None:
    if book.shutdown is not None:
        book.fail("SHUT-2: shutdown began twice")
    if not book.closed:
        book.fail(f"SHUT-1: shutdown began in state {book.state}, before close()")
    retiring = {w for w, n in book.handed_out.items() if book.maxtasks is not None and n >= book.maxtasks}
    due = set(seen.live) - retiring
    if set(seen.sentinel_to) != due:
        book.fail(f"SHUT-2: sentinels due to {sorted(due)}, planned for {sorted(seen.sentinel_to)}")
    if not set(seen.live) <= book.live:
        book.fail(f"SHUT-2: shutdown counted workers {sorted(set(seen.live) - book.live)} that are not live")
    book.shutdown = seen


def check_final(book: TraceState) -> list[str]:
    """What must hold once the pool has been joined (SHUT-3, SHUT-4, JOB-1)."""
    problems = list(book.violations)
    if book.live:
        problems.append(f"SHUT-3: workers {sorted(book.live)} never exited")
    if book.state is PoolState.CLOSE:
        if book.shutdown is None:
            problems.append("SHUT-1: the pool was joined after close() but never sent its sentinels")
        unended = book.handed - book.ended
        if unended:
            problems.append(f"JOB-1: tasks {sorted(unended)} were handed out and never ended")
        unsent = [w for w in (book.shutdown.sentinel_to if book.shutdown else ()) if w not in book.sentinels]
        if unsent:
            problems.append(f"SHUT-2: workers {unsent} were due a sentinel and got none")
    return problems
