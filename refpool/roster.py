"""The roster: which workers exist, which tasks each one holds, and who gets the next one.

This is how refpool never loses a task to a dead worker (CPython hangs here:
bpo-22393). The parent assigns every task to one worker and records it here
*before* sending it, so ownership is never in doubt. Every worker has its own
inbox; there is no shared task queue from which a dying worker could take a
task unseen.

Several tasks in flight. A process worker may hold up to `depth` tasks
(transport.py says how many), written ahead into its inbox, so that it never
waits for the parent between tasks. It runs them in order, so once everything
it sent has been read, the oldest task it still holds is the only one it can
have been running: when it dies, that one fails with WorkerLostError and the
ones behind it go back to `ready`, to run elsewhere (LOST-1, LOST-3). A thread
worker's inbox is a deque in this process: the roster puts tasks into it at
once, and the worker takes them itself and settles their jobs itself, telling
the roster which tasks it has finished only when its inbox is empty
(`settle_many`): one round of the roster's lock per several tasks.

Claims and take-back. Before a worker starts a task it *claims* it (see
claims.py); the parent can *take back* every task a worker holds and has not
claimed. When a worker becomes idle and no task is ready, the parent takes
back the unstarted tasks of a worker that holds several and gives them to the
idle one, so that no task waits behind a long one while a worker is idle
(WORK-5). A worker that kept a started task after a take-back is *stalled*:
it is given nothing new until it holds nothing, so that tasks do not queue
again behind the task that made them wait.

The inbox budget. A task is written to a busy worker only if everything that
may be unread in its pipe (the tasks it holds, those taken back from it that
it may not have skipped yet, and this task) fits in half its inbox pipe; a
task that does not fit waits for a worker that holds nothing, which is
reading its inbox. So the thread that writes never blocks on the pipe of a
worker that is running a task: what is unread there is at most half the
pipe, plus the one task it was given while it held nothing. A task too big
for the budget always travels alone (WORK-7).

`ready` holds tasks the task handler has prepared (encoded) while no worker
could take them, and tasks taken back or left by a dead worker (at its
front, to keep their place). The task handler puts at most `READY_LIMIT`
tasks into it, and then waits until half of them are gone: so imap reads
its input only as workers take tasks, a bounded number ahead (API-5), and
the task handler works in bursts instead of waking once per task.

Who hands tasks out: whichever thread sees a worker with room. The result
handler, reading an outcome, gives the worker that sent it the next ready
task (a thread worker does so itself); the task handler hands a new task to
the least busy worker when nothing is ready; the worker handler serves each
worker it starts. Every change is made under `cond`; what is to be written
to a process worker goes into its `outgoing` queue, and the thread that made
the change writes it after leaving `cond` (`Handout.send`), holding the
worker's `writing` lock, so that writes to one worker keep their order and
no thread holds `cond` while it writes to a pipe. A thread worker's inbox
takes its tasks at once, under `cond`.

Shutdown. Once the pool is closed and the task handler has offered every
task (`closing`), a worker that is idle, while nothing is ready and nothing
can be taken back for it, is sent its shutdown sentinel (SHUT-1, SHUT-2); a
worker that has been handed its `maxtasks` tasks exits by itself instead.
Workers are started in `closing` only for tasks that wait in `ready` (tasks
left behind by a dead worker, say), never otherwise (WORK-2).

Invariants (spec WORK-1, WORK-2, WORK-3, WORK-5, WORK-7, SHUT-1, SHUT-2),
true whenever nobody holds `cond`:
- at most `processes` workers are in the roster;
- every task handed out is held by exactly one worker until its outcome has
  been read, it has been taken back, or the worker has been reaped;
- a worker holds at most `depth` tasks, and is handed at most `maxtasks` in
  all, less those taken back from it;
- a task waits in `ready` only while no worker can take it;
- while a worker is idle, every other worker has started every task it
  holds but the oldest (WORK-5);
- a task goes to a busy worker only if all it holds fits the inbox budget;
- no worker is added unless `workers_to_start` allows it;
- a sentinel goes to a worker only when it holds nothing, and nothing is
  written to it after its sentinel.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple, Protocol

from .claims import taken_back
from .messages import SHUTDOWN, Shutdown, TaskKey
from .observer import (
    JobCancelled,
    Observer,
    OutcomeDelivered,
    SentinelSent,
    ShutdownBegun,
    TaskHandedOut,
    TaskTakenBack,
    TaskTimedOut,
    WorkerReaped,
    WorkerStarted,
)


class TakeBack(Protocol):
    """The parent's side of a worker's claims (claims.SharedClaimWord, claims.ThreadInbox).

    Defined here, not in claims.py, which every worker process imports: a
    Protocol costs a spawned worker a millisecond to define, and it needs none.
    """

    def take_back(self, last_sent: int) -> int:
        """Revoke every task the worker has not started, up to `last_sent`; return the number
        of the last task it has started (`claimed`)."""
        ...

    def started(self) -> tuple[int, int]:
        """The number of the last task the worker has started, and when (monotonic ns)."""
        ...


class WorkerHandle(Protocol):
    """A started worker, as the parent sees it (see transport.py)."""

    worker_id: int

    # Whether its inbox is in this process (a thread's): putting into it never
    # blocks, and is done under `cond`, without `outgoing`.
    in_process: bool

    @property
    def claims(self) -> TakeBack:
        """How the parent takes back the tasks it has not started (claims.py)."""
        ...

    @property
    def inbox_budget(self) -> int | None:
        """Bytes of tasks that may wait in its inbox while it runs one (WORK-7); None: no limit."""
        ...

    @property
    def pid(self) -> int | None: ...
    def send(self, items: Sequence[Outgoing]) -> None:
        """Write these numbered tasks and sentinels to its inbox, in order."""
        ...

    def kill(self) -> None: ...
    def stop_now(self) -> None:
        """Kill a process worker with SIGKILL, which no task can catch (TIME-2)."""
        ...

    def join(self) -> None: ...
    def is_alive(self) -> bool: ...


# How many tasks the task handler prepares ahead into `ready`. Fewer make the
# parent's threads take turns more often: on this project's machine imap over
# tiny items took 1.3 times as long with 16 as with 64, in processes and in
# threads alike (benchmarks/README.md); more would only read imap's input
# further ahead.
READY_LIMIT: Final = 64

Numbered = tuple[int, object]  # a task's number at its worker, and the task encoded
Outgoing = Numbered | Shutdown  # what is written to a worker's inbox


# The roster's arithmetic, pure, so that CrossHair can check its contracts
# (tests/contracts/test_crosshair.py). Roster below applies it under `cond`.


# WORK-1: while the pool may grow, start exactly enough workers to be back at
# `processes`, never more. WORK-2: none after terminate(); once the pool is
# closing (closed, and every task offered), only as many as there are tasks
# waiting in `ready` for a worker. `live <= processes` is the roster's
# invariant, which Roster.add asserts.
def workers_to_start(processes: int, live: int, closing: bool, waiting: int, terminating: bool) -> int:
    """How many workers to start now.

    pre: processes >= 1 and 0 <= live <= processes and waiting >= 0
    post: __return__ >= 0
    post: live + __return__ <= processes
    post: not terminating or __return__ == 0
    post: not closing or __return__ <= waiting
    post: terminating or closing or live + __return__ == processes
    post: terminating or not closing or __return__ == min(processes - live, waiting)
    """
    if terminating:
        return 0
    if closing:
        return min(processes - live, waiting)
    return processes - live


# LOST-4: a worker whose initializer raised is replaced after a pause that
# doubles with each such failure in a row, so that a pool whose initializer
# always fails does not start worker after worker as fast as it can.
FIRST_INITIALIZER_PAUSE_MS: Final = 100
LONGEST_INITIALIZER_PAUSE_MS: Final = 2000
# From this many failures in a row, tasks fail instead of waiting for a worker.
INITIALIZER_FAILURES_BEFORE_FAILING: Final = 3


def initializer_pause_ms(failures: int) -> int:
    """Milliseconds to wait before starting workers, after `failures` initializer failures in a row.

    pre: failures >= 0
    post: 0 <= __return__ <= LONGEST_INITIALIZER_PAUSE_MS
    post: (__return__ == 0) == (failures == 0)
    post: failures < 2 or __return__ >= initializer_pause_ms(failures - 1)
    """
    if failures == 0:
        return 0
    return min(FIRST_INITIALIZER_PAUSE_MS << min(failures - 1, 16), LONGEST_INITIALIZER_PAUSE_MS)


# WORK-3, WORK-4: a worker handed `maxtasks` tasks takes no more and exits by itself.
def retiring(handed_out: int, maxtasks: int | None) -> bool:
    """Whether a worker has been handed its `maxtasks` tasks (less those taken back).

    pre: handed_out >= 0 and (maxtasks is None or maxtasks >= 1)
    post: __return__ == (maxtasks is not None and handed_out >= maxtasks)
    post: not __return__ or handed_out >= 1
    """
    return maxtasks is not None and handed_out >= maxtasks


# WORK-3: after taking one more task, a worker holds at most `depth` and has
# been handed at most `maxtasks`. WORK-7: a busy worker takes a task only if
# what may still be unread in its pipe, that task included, fits its inbox
# budget, and not while it is stalled. WORK-5: a worker that holds nothing
# takes any task, however big, unless it has been handed its `maxtasks`.
def can_take(
    held: int,
    depth: int,
    handed_out: int,
    maxtasks: int | None,
    unread_bytes: int,
    size: int,
    budget: int | None,
    stalled: bool,
) -> bool:
    """Whether a worker holding `held` tasks, with `unread_bytes` perhaps unread in its pipe,
    may take one of `size` bytes.

    pre: held >= 0 and depth >= 1 and handed_out >= 0 and unread_bytes >= 0 and size >= 0
    pre: maxtasks is None or maxtasks >= 1
    pre: budget is None or budget >= 0
    post: not __return__ or held + 1 <= depth
    post: not __return__ or maxtasks is None or handed_out + 1 <= maxtasks
    post: not __return__ or held == 0 or budget is None or unread_bytes + size <= budget
    post: not __return__ or held == 0 or not stalled
    post: held > 0 or __return__ == (not retiring(handed_out, maxtasks))
    """
    if held >= depth or retiring(handed_out, maxtasks):
        return False
    if held == 0:
        return True  # it is reading its inbox, or about to: any task goes through
    return not stalled and (budget is None or unread_bytes + size <= budget)


# SHUT-1, SHUT-2: a worker is sent its one sentinel once the pool is closing,
# nothing is ready, and it holds nothing; never twice, and never to a worker
# that has been handed its `maxtasks` tasks (it exits by itself).
def needs_sentinel(
    closing: bool, waiting: int, held: int, got_shutdown: bool, handed_out: int, maxtasks: int | None
) -> bool:
    """Whether this worker, idle or not, must be sent its sentinel now.

    pre: waiting >= 0 and held >= 0 and handed_out >= 0 and (maxtasks is None or maxtasks >= 1)
    post: not __return__ or (closing and waiting == 0 and held == 0)
    post: not (__return__ and got_shutdown)
    post: not (__return__ and maxtasks is not None and handed_out >= maxtasks)
    post: __return__ or not closing or waiting or held or got_shutdown or retiring(handed_out, maxtasks)
    """
    return closing and waiting == 0 and held == 0 and not got_shutdown and not retiring(handed_out, maxtasks)


class HeldTask(NamedTuple):
    number: int  # among the tasks sent to its worker: 1, 2, 3, ... (claims.py)
    size: int  # bytes in the worker's inbox; 0 for a thread worker
    # Kept so that it can be handed out again after a take-back or a crash.
    # None for a task too big for the budget: it travels alone, so it is its
    # worker's oldest, never taken back to run elsewhere (only to be dropped,
    # if its job is cancelled), and fails if the worker dies.
    encoded: object | None
    timeout: float | None  # seconds it may run, from its start (TIME-1)


class ReadyTask(NamedTuple):
    key: TaskKey
    encoded: object
    size: int
    timeout: float | None = None


@dataclass(eq=False)  # compared and hashed by identity
class WorkerRecord:
    handle: WorkerHandle
    held: dict[TaskKey, HeldTask] = field(default_factory=dict)  # oldest first
    held_bytes: int = 0
    # Tasks taken back from it may still be unread in its pipe (it skips them
    # when it reads them): their bytes count against its budget (WORK-7) until
    # an outcome shows it has read past the last of them.
    revoked_bytes: int = 0
    revoked_through: int = 0  # the number of the last task taken back from it
    last_number: int = 0  # of the last task sent to it
    handed_out: int = 0  # tasks it will run if it lives: for maxtasksperchild
    got_shutdown: bool = False
    exited: bool = False  # seen to have exited; its last outcomes may still be read
    stalled: bool = False  # tasks were taken back behind a task it runs
    # The task it was stopped for, having run past its timeout, and that timeout (TIME-2).
    timed_out: tuple[TaskKey, float] | None = None
    # What to write to its inbox, in order.
    outgoing: collections.deque[Outgoing] = field(default_factory=collections.deque)
    # Held by the one thread writing `outgoing` to the inbox.
    writing: threading.Lock = field(default_factory=threading.Lock)

    @property
    def worker_id(self) -> int:
        return self.handle.worker_id


class Handout(NamedTuple):
    """Workers that have something in `outgoing`, for the caller to write, outside `cond`."""

    records: tuple[WorkerRecord, ...]
    # The roster's `cond`, when the task handler waits for room in `ready`: it
    # is woken once the tasks are written (see `send`).
    room: threading.Condition | None = None

    def send(self) -> None:
        for record in self.records:
            write_outgoing(record)
        if self.room is not None:
            # Woken before the write, the task handler would take the GIL while
            # this thread writes, and the worker would wait for its next task
            # until the task handler had encoded one more (measured: about a
            # quarter of the time per task of imap over tiny items).
            with self.room:
                self.room.notify_all()


def send_all(handouts: list[Handout]) -> None:
    """Send several handouts: each worker's tasks in one write, the task handler woken once."""
    records = dict.fromkeys(record for handout in handouts for record in handout.records)
    for record in records:
        write_outgoing(record)
    room = next((handout.room for handout in handouts if handout.room is not None), None)
    if room is not None:
        with room:
            room.notify_all()


def write_outgoing(record: WorkerRecord) -> None:
    """Write what is queued for this worker, all at once, in order; a thread that finds
    another writing waits, and then finds nothing left, or what came since."""
    with record.writing:
        items = []
        while record.outgoing:  # others only append (under cond); only the writer pops
            items.append(record.outgoing.popleft())
        if items:
            # If it died, what it held fails or runs elsewhere when it is reaped.
            with contextlib.suppress(OSError):
                record.handle.send(items)


NOTHING: Final = Handout(())


def _ready_again(key: TaskKey, held: HeldTask) -> ReadyTask:
    """A held task that never started, to be handed out again."""
    assert held.encoded is not None, "a task sent alone was to run elsewhere"
    return ReadyTask(key, held.encoded, held.size, held.timeout)


class Roster:
    def __init__(
        self, processes: int, maxtasks: int | None, depth: int, observe: Observer | None = None
    ) -> None:
        # Changes are reported to the observer under `cond`, so that the trace
        # is in the order the roster really changed (observer.py).
        self._observe = observe
        self.processes = processes
        self.maxtasks = maxtasks
        self.depth = depth
        # `with self._lock` on the paths taken once per task: it is `cond`'s own
        # lock, and costs half as much as `with self.cond` (measured).
        self._lock = threading.Lock()
        self.cond = threading.Condition(self._lock)
        self.workers: dict[int, WorkerRecord] = {}
        self._handles: tuple[WorkerHandle, ...] = ()  # rebuilt when a worker comes or goes
        self.ready: collections.deque[ReadyTask] = collections.deque()
        self.ready_limit = READY_LIMIT
        # The length of `ready` at which the task handler, waiting for room,
        # wants to be woken; left over once it is not waiting, it costs a
        # wake-up that nobody waits for.
        self._wake_at = 0
        self.closing = False  # closed, and every task offered: idle workers get their sentinels
        self.terminating = False
        self._next_id = 0
        # Workers whose initializer raised, in a row: no outcome read since (LOST-4).
        self.initializer_failures = 0
        # Jobs cancelled while the task handler may still hold tasks of theirs that it has
        # prepared and not offered: `offer` drops those (CANCEL-1). Emptied by the task
        # handler once it holds none (`forget_cancelled`).
        self.cancelled: set[int] = set()
        # Called, under `cond`, when a task with a timeout is handed out (timekeeper.py).
        self.on_timed_task: Callable[[], None] | None = None

    # --- worker handler -------------------------------------------------
    def missing(self) -> int:
        """How many workers to start now (WORK-1, WORK-2). Caller holds cond."""
        return workers_to_start(
            self.processes, len(self.workers), self.closing, len(self.ready), self.terminating
        )

    def new_worker_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add(self, handle: WorkerHandle) -> None:
        """Caller holds cond, has checked `missing()`, and calls `serve_all` after its last add."""
        assert len(self.workers) < self.processes and not self.terminating, "a worker beyond the count"
        self.workers[handle.worker_id] = WorkerRecord(handle)
        self._handles = (*self._handles, handle)
        if self._observe is not None:
            self._observe(WorkerStarted(handle.worker_id, handle.pid))

    def serve_all(self) -> Handout:
        """Give every worker with room what it can take: ready tasks, a take-back, or its sentinel.

        Caller holds cond; after starting workers, closing, or reaping a worker.
        """
        if self.terminating:
            return NOTHING
        before = len(self.ready)
        touched: list[WorkerRecord] = []
        self._fill(touched)
        for record in sorted(self.workers.values(), key=lambda r: len(r.held)):
            self._serve(record, touched)
        return self._handout(touched, before)

    # --- task handler ---------------------------------------------------
    def offer(self, tasks: list[ReadyTask]) -> tuple[Handout, int]:
        """Hand each task, in order, to the least busy worker that can take it, or queue it
        in `ready`, until `ready` holds `ready_limit` tasks.

        Returns the handout to send and how many of the tasks were taken; the
        caller sends the handout, then waits for room (`wait_for_room`) before
        it offers the rest.
        """
        limit = self.ready_limit
        touched: list[WorkerRecord] = []
        taken = 0
        with self._lock:
            if self.terminating:
                return NOTHING, 0
            cancelled = self.cancelled
            for task in tasks:
                taken += 1
                if cancelled and task.key[0] in cancelled:
                    continue  # prepared before its job was cancelled: it never runs
                record = None if self.ready else self._least_busy(task.size)
                if record is not None:
                    self._assign(record, task, touched)
                elif len(self.ready) < limit:
                    self.ready.append(task)
                else:
                    taken -= 1
                    break
        return (Handout(tuple(dict.fromkeys(touched))) if touched else NOTHING), taken

    def wait_for_room(self) -> bool:
        """Wait until `ready` holds half of `ready_limit` tasks or fewer: waking once per task
        would make the task handler take the GIL from the result handler once per task.
        False if the pool is terminating."""
        limit = self.ready_limit
        with self.cond:
            while not self.terminating and len(self.ready) >= limit:
                self._wake_at = limit // 2
                self.cond.wait()
            return not self.terminating

    def begin_closing(self) -> Handout:
        """The pool is closed and every task has been offered: idle workers get their sentinels."""
        with self.cond:
            if self.terminating:
                return NOTHING  # terminate() stops every worker itself (SHUT-5)
            self.closing = True
            if self._observe is not None:
                self._observe(ShutdownBegun(tuple(self.workers)))
            return self.serve_all()

    # --- result handler (and thread workers, for their own outcomes) ------
    def settle(self, worker_id: int, key: TaskKey, success: bool) -> Handout:
        """The worker's outcome for `key` has been read: it holds the task no more.

        The worker, now with room, is given what it can take (WORK-5): the
        next ready tasks, or tasks taken back from a busy worker if it is
        idle, or, once the pool is closing, its sentinel.
        """
        with self._lock:
            record = self._release(worker_id, key, success)
            if record is None:
                return NOTHING
            before = len(self.ready)
            touched: list[WorkerRecord] = []
            self._serve(record, touched)
            return self._handout(touched, before)

    def settle_many(self, worker_id: int, finished: list[tuple[TaskKey, bool]], more: bool) -> Handout:
        """As `settle`, for the outcomes a thread worker has delivered itself since it last
        asked; with `more`, it is served as `settle` serves a worker (it is out of tasks)."""
        with self._lock:
            record = None
            for key, success in finished:
                record = self._release(worker_id, key, success)
            if not finished:
                record = self.workers.get(worker_id)
                if self.terminating or (record is not None and record.exited):
                    record = None
            if record is None or not more:
                return NOTHING
            before = len(self.ready)
            touched: list[WorkerRecord] = []
            self._serve(record, touched)
            return self._handout(touched, before)

    def exited(self, worker_id: int) -> None:
        """The worker is seen to have exited: the outcomes drained from its pipe free it for no new task."""
        with self.cond:
            record = self.workers.get(worker_id)
            if record is not None:
                record.exited = True

    def reap(
        self, worker_id: int, exitcode: int | None
    ) -> tuple[WorkerRecord | None, TaskKey | None, Handout]:
        """The worker has exited and everything it sent has been read (LOST-1, LOST-3).

        The oldest task it held is the only one it may have been running:
        it is returned, to fail with WorkerLostError. The tasks behind it
        never started; they go back to the front of `ready` and are handed
        to other workers. Returns the record, the lost task, and the handout.
        """
        with self.cond:
            record = self._pop(worker_id)
            if record is None:
                return None, None, NOTHING
            keys = list(record.held)
            lost = keys[0] if keys else None
            requeued = [_ready_again(k, record.held[k]) for k in keys[1:]]
            return record, lost, self._requeue(record, exitcode, lost, requeued)

    def reap_uninitialized(
        self, worker_id: int, exitcode: int | None
    ) -> tuple[WorkerRecord | None, list[TaskKey], Handout]:
        """The worker's initializer raised, and everything it sent has been read (LOST-4).

        It started no task: all it held go back to the front of `ready`. From
        the third such failure in a row, those and every other task in `ready`
        are returned instead, to fail with the initializer's error, so that no
        job waits for a worker that cannot start. Returns the record, those
        tasks, and the handout.
        """
        with self.cond:
            self.initializer_failures += 1
            record = self._pop(worker_id)
            if record is None:
                return None, [], NOTHING
            requeued = [_ready_again(k, held) for k, held in record.held.items()]
            if self.initializer_failures < INITIALIZER_FAILURES_BEFORE_FAILING or self.terminating:
                return record, [], self._requeue(record, exitcode, None, requeued)
            self._requeue(record, exitcode, None, requeued, serve=False)  # to fail, below
            failed = [task.key for task in self.ready]
            self.ready.clear()
            self.cond.notify_all()  # the task handler may be waiting for room in `ready`
            return record, failed, self.serve_all()  # sentinels for idle workers, if closing

    # --- cancel (jobs.py), timeouts (timekeeper.py) ------------------------
    def cancel(self, job_id: int) -> Handout:
        """No task of the job that has not started will start (CANCEL-1, CANCEL-3).

        Its tasks in `ready` are dropped; every worker holding one of its tasks
        has its unstarted tasks taken back (WORK-6): the job's are dropped, and
        other jobs' go back to the front of `ready`, to be handed out again. The
        job's tasks that have started run to their end; their outcomes find
        the job settled. The task handler drops the job's tasks it has
        prepared (`offer`) and reads no more of its input (task_handler.py).
        """
        with self.cond:
            if self.terminating:
                return NOTHING
            self.cancelled.add(job_id)
            dropped = [task.key for task in self.ready if task.key[0] == job_id]
            if dropped:
                others = [task for task in self.ready if task.key[0] != job_id]
                self.ready.clear()
                self.ready.extend(others)
            started: list[TaskKey] = []
            for record in list(self.workers.values()):
                if not any(key[0] == job_id for key in record.held):
                    continue
                back, _ = self._take_back(record)
                dropped += [key for key, _ in back if key[0] == job_id]
                self._put_back([(key, held) for key, held in back if key[0] != job_id])
                started += [key for key in record.held if key[0] == job_id]
            if self._observe is not None:
                self._observe(JobCancelled(job_id, tuple(dropped), tuple(started)))
            self.cond.notify_all()  # the task handler may be waiting for room in `ready`
            return self.serve_all()

    def forget_cancelled(self, nothing_queued: Callable[[], bool]) -> None:
        """The task handler holds no prepared task: if nothing is queued for it either, no task
        of a cancelled job can reach `offer` any more (the task handler checks each batch as it
        takes it), so the marks can go. Under `cond`, which `cancel` takes too, so that a job
        submitted and cancelled meanwhile keeps its mark."""
        with self.cond:
            if nothing_queued():
                self.cancelled.clear()

    def expire_due(self, now: int) -> tuple[Handout, float | None]:
        """Stop each worker whose running task is past its timeout (TIME-2).

        `now` is `time.monotonic_ns()`. A task's clock starts when its worker
        claims it (TIME-1): the claim word says which task that is, and when.
        Returns the handout (the tasks taken back from stopped workers, to
        others) and the seconds until a timed task held now could be due;
        None if no worker holds one.
        """
        with self.cond:
            if self.terminating:
                return NOTHING, None
            next_due: int | None = None
            acted = False
            for record in list(self.workers.values()):
                timed = [(key, held) for key, held in record.held.items() if held.timeout is not None]
                if record.exited or not timed:
                    continue
                claimed, claimed_at = record.handle.claims.started()
                for key, held in timed:
                    assert held.timeout is not None
                    if held.number < claimed:
                        continue  # it has finished: its outcome is on its way
                    limit = int(held.timeout * 1e9)
                    # One not started yet cannot be due before `limit` from now.
                    due = claimed_at + limit if held.number == claimed else now + limit
                    if held.number == claimed and due <= now:
                        self._stop_for_timeout(record, key, held.timeout)
                        acted = True
                        break
                    next_due = due if next_due is None else min(next_due, due)
            # Served after any take-back, not only after a kill: a worker that finished the
            # task meanwhile has had the tasks behind it taken back all the same (WORK-5;
            # found by the Python model, models/pool_model.py).
            handout = self.serve_all() if acted else NOTHING
            return handout, None if next_due is None else max(0, next_due - now) / 1e9

    def _stop_for_timeout(self, record: WorkerRecord, key: TaskKey, timeout: float) -> None:
        """Take back the worker's unstarted tasks, then, if the task is still the one it runs,
        kill it: the task fails with TaskTimeoutError once the worker is reaped (result
        handler). Caller holds cond, and serves the workers after it."""
        number = record.held[key].number
        back, claimed = self._take_back(record)
        self._put_back(back)
        if claimed != number:
            return  # it finished the task meanwhile, and can claim nothing more: left alone
        # Everything behind the task is revoked, so the worker can start nothing
        # between this check and the kill; it gets nothing more (`exited`).
        record.timed_out = (key, timeout)
        record.exited = True
        if self._observe is not None:
            self._observe(TaskTimedOut(record.worker_id, *key, timeout))
        record.handle.stop_now()

    def _pop(self, worker_id: int) -> WorkerRecord | None:
        """Take the worker out of the roster. Caller holds cond."""
        self._handles = tuple(h for h in self._handles if h.worker_id != worker_id)
        return self.workers.pop(worker_id, None)

    def _requeue(
        self,
        record: WorkerRecord,
        exitcode: int | None,
        lost: TaskKey | None,
        requeued: list[ReadyTask],
        serve: bool = True,
    ) -> Handout:
        """Caller holds cond and has reaped `record`: its tasks that never started go first in
        `ready`, and the workers with room are served."""
        if self._observe is not None:
            self._observe(
                WorkerReaped(
                    record.worker_id,
                    record.handle.pid,
                    exitcode,
                    () if lost is None else (lost,),
                    tuple(task.key for task in requeued),
                )
            )
        record.held.clear()
        if self.terminating:
            return NOTHING
        self.ready.extendleft(reversed(requeued))
        return self.serve_all() if serve else NOTHING

    def handles(self) -> tuple[WorkerHandle, ...]:
        """The workers in the roster; the same object until one comes or goes."""
        with self.cond:
            return self._handles

    def finished(self) -> bool:
        """Nothing more can happen: terminating, or closing with no worker and no task left."""
        with self.cond:
            return self.terminating or (self.closing and not self.workers and not self.ready)

    # --- terminate ------------------------------------------------------
    def terminate(self) -> None:
        with self.cond:
            self.terminating = True
            self.cond.notify_all()

    # --- under cond -----------------------------------------------------
    def _release(self, worker_id: int, key: TaskKey, success: bool) -> WorkerRecord | None:
        """Free the worker's hold on a task whose outcome has been read; the record, if it
        may be given more (it is in the roster, has not exited, and the pool is not terminating)."""
        record = self.workers.get(worker_id)
        if record is None:
            return None
        held = record.held.pop(key, None)
        self.initializer_failures = 0  # a worker that sends an outcome has started (LOST-4)
        if self._observe is not None:
            self._observe(OutcomeDelivered(worker_id, *key, success))
        if held is not None:
            record.held_bytes -= held.size
            if held.number > record.revoked_through:
                record.revoked_bytes = 0  # it has read past every task taken back from it
        if not record.held:
            record.stalled = False
        if self.terminating or record.exited:
            return None  # an exited worker's drained outcomes free it for nothing
        return record

    def _handout(self, touched: list[WorkerRecord], ready_before: int) -> Handout:
        """What the caller must write; with `room` if `ready` fell to where the task handler
        wants to be woken."""
        room = self.cond if len(self.ready) <= self._wake_at < ready_before else None
        if not touched and room is None:
            return NOTHING
        # Once per outcome: most often one worker, touched once or more.
        first = touched[0] if touched else None
        if all(record is first for record in touched):
            return Handout((first,) if first is not None else (), room)
        return Handout(tuple(dict.fromkeys(touched)), room)

    def _serve(self, record: WorkerRecord, touched: list[WorkerRecord]) -> None:
        """Give one worker what it can take now: ready tasks; if it is idle and none is ready,
        the unstarted tasks of a busy worker; if there are none either and the pool is closing,
        its sentinel."""
        if record.exited or record.got_shutdown:
            return
        taken: list[Outgoing] = []
        while self.ready and self._can_take(record, self.ready[0].size):
            task = self.ready.popleft()
            taken.append((self._hold(record, task), task.encoded))
        if taken:
            self._put(record, taken, touched)
        if record.held or self.ready or retiring(record.handed_out, self.maxtasks):
            return
        if self._rebalance(record, touched):
            return
        waiting, held = len(self.ready), len(record.held)
        if needs_sentinel(self.closing, waiting, held, record.got_shutdown, record.handed_out, self.maxtasks):
            self._send_sentinel(record, touched)

    def _send_sentinel(self, record: WorkerRecord, touched: list[WorkerRecord]) -> None:
        record.got_shutdown = True
        if self._observe is not None:  # before it is written, so it precedes the worker's exit
            self._observe(SentinelSent(record.worker_id))
        self._put(record, [SHUTDOWN], touched)

    def _rebalance(self, idle: WorkerRecord, touched: list[WorkerRecord]) -> bool:
        """Take back the unstarted tasks of the busiest worker that has some, and hand them out.

        Only a worker that holds two tasks or more can have one waiting behind
        another; a take-back that finds every task started moves on to the next.
        """
        busy = sorted(
            (r for r in self.workers.values() if r is not idle and len(r.held) >= 2),
            key=lambda r: len(r.held),
            reverse=True,
        )
        for victim in busy:
            back, _ = self._take_back(victim)
            if back:
                self._put_back(back)
                self._fill(touched)
                return True
        return False

    def _take_back(self, victim: WorkerRecord) -> tuple[list[tuple[TaskKey, HeldTask]], int]:
        """Every task the worker holds and has not claimed is the parent's again (WORK-6).
        Returns those tasks, oldest first, and the number of the last task it has claimed."""
        claimed = victim.handle.claims.take_back(victim.last_number)
        numbers = set(taken_back([h.number for h in victim.held.values()], claimed))
        back = []
        for key, held in list(victim.held.items()):
            if held.number in numbers:
                del victim.held[key]
                victim.held_bytes -= held.size
                victim.revoked_bytes += held.size
                victim.revoked_through = victim.last_number
                victim.handed_out -= 1
                back.append((key, held))
                if self._observe is not None:
                    self._observe(TaskTakenBack(victim.worker_id, *key))
        if back:  # one that finds nothing leaves it as it was: stalled or not
            victim.stalled = bool(victim.held)
        return back, claimed

    def _put_back(self, back: list[tuple[TaskKey, HeldTask]]) -> None:
        """Tasks taken back, never started, go to the front of `ready`, in their order."""
        self.ready.extendleft(reversed([_ready_again(key, held) for key, held in back]))

    def _fill(self, touched: list[WorkerRecord]) -> None:
        """Hand ready tasks out one at a time, each to the least busy worker that can take it,
        so that every idle worker gets one before any worker gets a second."""
        while self.ready:
            record = self._least_busy(self.ready[0].size)
            if record is None:
                return
            self._assign(record, self.ready.popleft(), touched)

    def _assign(self, record: WorkerRecord, task: ReadyTask, touched: list[WorkerRecord]) -> None:
        """Record that the worker holds the task, then queue it for writing."""
        self._put(record, [(self._hold(record, task), task.encoded)], touched)

    def _put(self, record: WorkerRecord, items: list[Outgoing], touched: list[WorkerRecord]) -> None:
        """Queue tasks or the sentinel for the worker, under cond, so that a sentinel queues
        behind every task handed out before it (SHUT-1). An inbox in this process takes them
        at once; a pipe is written after cond is released."""
        if record.handle.in_process:
            record.handle.send(items)
        else:
            record.outgoing.extend(items)
            touched.append(record)

    def _hold(self, record: WorkerRecord, task: ReadyTask) -> int:
        """Record that the worker holds the task (WORK-3), before anyone sends it; its number."""
        record.last_number += 1
        budget = record.handle.inbox_budget
        kept = task.encoded if budget is None or task.size <= budget else None
        # tuple.__new__: the named tuple's own constructor is a Python function,
        # and this runs once per task (measured: a tenth of the time).
        record.held[task.key] = tuple.__new__(HeldTask, (record.last_number, task.size, kept, task.timeout))
        record.held_bytes += task.size
        record.handed_out += 1
        if self._observe is not None:
            self._observe(TaskHandedOut(record.worker_id, *task.key))
        if task.timeout is not None and self.on_timed_task is not None:
            self.on_timed_task()
        return record.last_number

    def _least_busy(self, size: int) -> WorkerRecord | None:
        best: WorkerRecord | None = None
        for record in self.workers.values():
            if self._can_take(record, size) and (best is None or len(record.held) < len(best.held)):
                best = record
        return best

    def _can_take(self, record: WorkerRecord, size: int) -> bool:
        return (
            not record.exited
            and not record.got_shutdown
            and can_take(
                len(record.held),
                self.depth,
                record.handed_out,
                self.maxtasks,
                record.held_bytes + record.revoked_bytes,
                size,
                record.handle.inbox_budget,
                record.stalled,
            )
        )
