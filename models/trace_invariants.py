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
from refpool.messages import TaskKey
from refpool.observer import (
    JobCancelled,
    Observation,
    OutcomeDelivered,
    SentinelSent,
    ShutdownBegun,
    StateChanged,
    TaskHandedOut,
    TaskTakenBack,
    TaskTimedOut,
    WorkerReaped,
    WorkerStarted,
)


@dataclass
class TraceState:
    processes: int
    maxtasks: int | None
    depth: int
    state: PoolState = PoolState.INIT
    closed: bool = False  # close() was called (the state may have moved on to TERMINATE)
    closing: bool = False  # ShutdownBegun: every task has been offered
    live: set[int] = field(default_factory=set)
    ever_started: set[int] = field(default_factory=set)
    started_while_closing: set[int] = field(default_factory=set)
    held: dict[int, list[TaskKey]] = field(default_factory=dict)  # in hand-out order
    handed_out: dict[int, int] = field(default_factory=dict)  # net of take-backs
    ever_handed: dict[int, int] = field(default_factory=dict)
    handed: set[TaskKey] = field(default_factory=set)
    waiting: set[TaskKey] = field(default_factory=set)  # taken back or requeued, not handed out again
    ended: set[TaskKey] = field(default_factory=set)  # delivered, or lost with its worker
    sentinels: dict[int, int] = field(default_factory=dict)
    exits: dict[int, int | None] = field(default_factory=dict)  # exit codes of the workers gone
    cancelled: set[int] = field(default_factory=set)  # jobs
    may_end_cancelled: set[TaskKey] = field(default_factory=set)  # running when their job was cancelled
    timed_out: dict[TaskKey, int] = field(default_factory=dict)  # task -> the worker stopped for it
    violations: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.violations.append(message)

    def retiring(self, worker: int) -> bool:
        return self.maxtasks is not None and self.handed_out.get(worker, 0) >= self.maxtasks


def check_trace(trace: Iterable[Observation], processes: int, maxtasks: int | None, depth: int) -> TraceState:
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
        _start(book, seen)
    elif isinstance(seen, TaskHandedOut):
        _hand_out(book, seen)
    elif isinstance(seen, TaskTakenBack):
        key = (seen.job_id, seen.position)
        if _release(book, seen.worker_id, key, "taken back from"):
            book.handed_out[seen.worker_id] -= 1
        book.waiting.add(key)
    elif isinstance(seen, OutcomeDelivered):
        key = (seen.job_id, seen.position)
        # A task taken back and run anyway fails here: it has run twice (WORK-6).
        _release(book, seen.worker_id, key, "outcome from")
        if seen.job_id in book.cancelled and key not in book.may_end_cancelled:
            book.fail(f"CANCEL-1: task {key} of a cancelled job ran, though it had not started")
        _end(book, key)
    elif isinstance(seen, WorkerReaped):
        _exit(book, seen)
    elif isinstance(seen, ShutdownBegun):
        if book.closing:
            book.fail("SHUT-1: shutdown began twice")
        if not book.closed:
            book.fail(f"SHUT-1: shutdown began in state {book.state}, before close()")
        book.closing = True
    elif isinstance(seen, SentinelSent):
        _sentinel(book, seen)
    elif isinstance(seen, JobCancelled):
        _cancel(book, seen)
    elif isinstance(seen, TaskTimedOut):
        _time_out(book, seen)


def _cancel(book: TraceState, seen: JobCancelled) -> None:
    """CANCEL-1: the tasks dropped never run; none of the job's is handed out after this."""
    if seen.job_id in book.cancelled:
        book.fail(f"CANCEL-1: job {seen.job_id} was cancelled twice")
    book.cancelled.add(seen.job_id)
    # Every task of the job a worker still holds, after the take-backs just reported, has
    # started: one left unstarted in an inbox would run (models/pool_model.py: cancel_leaves_inbox).
    still_held = {key for held in book.held.values() for key in held if key[0] == seen.job_id}
    if still_held != set(seen.started):
        book.fail(
            f"CANCEL-1: job {seen.job_id} cancelled while workers held {sorted(still_held)}, "
            f"of which it says {list(seen.started)} had started"
        )
    book.may_end_cancelled.update(seen.started)
    for key in seen.dropped:
        if any(key in held for held in book.held.values()):
            book.fail(f"CANCEL-1: task {key} dropped while a worker still holds it")
        book.waiting.discard(key)
        if key in book.handed:
            _end(book, key)  # it ends here, never run: an outcome later would end it twice
    for key in seen.started:
        if not any(key in held for held in book.held.values()):
            book.fail(f"CANCEL-1: task {key} said to be running, but no worker holds it")


def _time_out(book: TraceState, seen: TaskTimedOut) -> None:
    """TIME-2: only a held task times out, once, and its worker is given nothing more."""
    key = (seen.job_id, seen.position)
    if key not in book.held.get(seen.worker_id, []):
        book.fail(f"TIME-2: task {key} timed out on worker {seen.worker_id}, which did not hold it")
    if key in book.timed_out:
        book.fail(f"TIME-2: task {key} timed out twice: it ran again")
    book.timed_out[key] = seen.worker_id


def _release(book: TraceState, worker: int, key: TaskKey, what: str) -> bool:
    """The worker holds the task no more; False (and a violation) if it did not hold it."""
    held = book.held.get(worker, [])
    if key not in held:
        book.fail(f"WORK-6: task {key} {what} worker {worker}, which did not hold it")
        return False
    held.remove(key)
    return True


def _start(book: TraceState, seen: WorkerStarted) -> None:
    if book.state is PoolState.TERMINATE:
        book.fail(f"WORK-2: worker {seen.worker_id} started after terminate")
    if seen.worker_id in book.ever_started:
        book.fail(f"WORK-1: worker id {seen.worker_id} started twice")
    book.live.add(seen.worker_id)
    book.ever_started.add(seen.worker_id)
    book.held[seen.worker_id] = []
    if book.closing:
        book.started_while_closing.add(seen.worker_id)
    if len(book.live) > book.processes:
        book.fail(f"WORK-1: {len(book.live)} live workers, more than processes={book.processes}")


def _hand_out(book: TraceState, seen: TaskHandedOut) -> None:
    key = (seen.job_id, seen.position)
    worker = seen.worker_id
    if book.sentinels.get(worker):
        book.fail(f"SHUT-1: task {key} handed to worker {worker} after its sentinel")
    if worker not in book.live:
        book.fail(f"WORK-3: task {key} handed to worker {worker}, which is not live")
    if key in book.handed and key not in book.waiting:
        book.fail(f"WORK-3: task {key} handed out twice, never taken back")
    if seen.job_id in book.cancelled:
        book.fail(f"CANCEL-1: task {key} handed out after its job was cancelled")
    if key in book.timed_out:
        book.fail(f"TIME-2: task {key} handed out again after it timed out")
    if worker in book.timed_out.values():
        book.fail(f"TIME-2: task {key} handed to worker {worker}, which is being stopped")
    book.handed.add(key)
    book.waiting.discard(key)
    held = book.held.setdefault(worker, [])
    held.append(key)
    if len(held) > book.depth:
        book.fail(f"WORK-3: worker {worker} holds {len(held)} tasks, more than {book.depth}")
    book.handed_out[worker] = book.handed_out.get(worker, 0) + 1
    book.ever_handed[worker] = book.ever_handed.get(worker, 0) + 1
    if book.maxtasks is not None and book.handed_out[worker] > book.maxtasks:
        book.fail(f"WORK-3: worker {worker} was handed more than maxtasksperchild={book.maxtasks}")


def _exit(book: TraceState, seen: WorkerReaped) -> None:
    worker = seen.worker_id
    held = book.held.pop(worker, [])
    if list(seen.lost) + list(seen.requeued) != held:
        book.fail(
            f"LOST-1: worker {worker} exited holding {held}, reported lost {list(seen.lost)} "
            f"and requeued {list(seen.requeued)}"
        )
    if len(seen.lost) > 1:
        book.fail(f"LOST-3: worker {worker}'s death failed {len(seen.lost)} tasks: {list(seen.lost)}")
    stopped_for = [key for key, stopped in book.timed_out.items() if stopped == worker]
    if stopped_for and not set(seen.lost) <= set(stopped_for):
        book.fail(f"TIME-2: worker {worker}, stopped for {stopped_for}, failed {list(seen.lost)} with it")
    if stopped_for and seen.requeued:
        book.fail(f"TIME-2: worker {worker}, stopped for {stopped_for}, still held {list(seen.requeued)}")
    for key in seen.lost:
        _end(book, key)
    book.waiting.update(seen.requeued)
    book.live.discard(worker)
    book.exits[worker] = seen.exitcode


def _sentinel(book: TraceState, seen: SentinelSent) -> None:
    worker = seen.worker_id
    book.sentinels[worker] = book.sentinels.get(worker, 0) + 1
    if book.sentinels[worker] > 1:
        book.fail(f"SHUT-2: worker {worker} was sent a second sentinel")
    if not book.closing:
        book.fail(f"SHUT-1: sentinel to worker {worker} before every task had been offered")
    if book.held.get(worker):
        book.fail(f"SHUT-1: sentinel to worker {worker} while it held {book.held[worker]}")
    if book.retiring(worker):
        book.fail(f"SHUT-2: sentinel to worker {worker}, which was handed its maxtasksperchild tasks")
    if worker in book.started_while_closing and not book.ever_handed.get(worker):
        book.fail(f"WORK-2: worker {worker} was started while closing, with no task waiting for it")


def _end(book: TraceState, key: TaskKey) -> None:
    if key in book.ended:
        book.fail(f"JOB-1: task {key} ended twice")
    if key not in book.handed:
        book.fail(f"WORK-3: task {key} ended but was never handed out")
    book.ended.add(key)


def check_final(book: TraceState) -> list[str]:
    """What must hold once the pool has been joined (SHUT-2, SHUT-3, SHUT-4, JOB-1)."""
    problems = list(book.violations)
    if book.live:
        problems.append(f"SHUT-3: workers {sorted(book.live)} never exited")
    if book.state is PoolState.CLOSE:
        if not book.closing:
            problems.append("SHUT-1: the pool was joined after close() but never began to shut down")
        unended = book.handed - book.ended
        if unended:
            problems.append(f"JOB-1: tasks {sorted(unended)} were handed out and never ended")
        stranded = book.waiting - book.ended
        if stranded:
            problems.append(f"LOST-3: tasks {sorted(stranded)} were taken back and never ran")
        for worker, exitcode in book.exits.items():
            # A worker that exited by itself, neither dying nor retiring, did so on its sentinel.
            if exitcode == 0 and not book.sentinels.get(worker) and not book.retiring(worker):
                problems.append(f"SHUT-2: worker {worker} exited cleanly without a sentinel or its quota")
    return problems
