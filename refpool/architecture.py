"""The pool's architecture as data: its parts, what travels between them, and its locks.

The code cannot be parsed into this picture wholesale (who calls whom depends on
which thread runs a method, not on which module defines it), so the facts are
written here, once. Every fact names something in the code: a class, a method, a
record type, a thread's name, a lock attribute; tests/test_diagrams.py checks
each against the code (it exists; a record is made by the sender and read by the
receiver; a method is called where the sender's code runs; every lock the
package makes is listed), and tests/test_lock_takers.py watches the locks while
pools run (every thread seen taking one is listed for it), so a change to the
code that this table does not follow fails a test. spec/make_diagrams.py draws the component diagram from it
(refpool/diagrams.py). Nothing in the pool imports this module.

A name such as "refpool.roster:Roster.offer" is a module, then an attribute path
inside it.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

__all__ = [
    "COMPONENTS",
    "EDGES",
    "LOCKS",
    "RECORDS",
    "THREADS",
    "WIRING",
    "Component",
    "Edge",
    "Lock",
    "Record",
    "Thread",
    "Via",
]

ComponentKind = Literal["caller", "thread", "data", "workers", "channel"]
LockKind = Literal["Lock", "RLock", "Condition"]

# Where the pool's parts are wired together: a method one part hands to another
# as a callback is named here (`Via.called_as`).
WIRING: Final = "refpool.core"


class Component(NamedTuple):
    key: str  # its node in the diagrams
    label: str
    anchor: str  # the class (or module) that is this component
    modules: tuple[str, ...]  # where the code that runs as this component lives
    kind: ComponentKind
    runs_in: str  # which threads run its code, in words


class Thread(NamedTuple):
    """A thread of the parent process, by the name it is started with."""

    key: str
    label: str
    name: str  # as given to threading.Thread(name=...): a prefix, if the name is an f-string; "" for none
    started_in: str  # the module that starts it; "" for the caller's own threads


class Record(NamedTuple):
    """A message that travels between components: a class, or one constant value of a class."""

    name: str
    module: str
    constant_of: str | None = None  # a constant sent as it is (not constructed): its class's name


class Via(NamedTuple):
    """A method or function through which something travels."""

    target: str  # "module:Class.method" or "module:function"
    # The name the caller uses, when WIRING hands it the method as a callback.
    called_as: str | None = None


class Edge(NamedTuple):
    sender: str
    receiver: str
    records: tuple[str, ...]  # what travels, by Record name
    vias: tuple[Via, ...]
    # Who makes the calls in `vias`: the sender, or the receiver (which then
    # takes what travels, as the result handler reads the transport).
    called_by: Literal["sender", "receiver"] = "sender"
    note: str = ""


class Lock(NamedTuple):
    owner: str  # "module:Class" whose instances hold it
    attribute: str
    kind: LockKind
    taken_by: tuple[str, ...]  # Thread keys
    taken_in: tuple[str, ...]  # modules that hold it (`with <...>.attribute`)
    guards: str
    # A Condition made over another lock of the same object: that lock's attribute.
    over: str | None = None


THREADS: Final[tuple[Thread, ...]] = (
    Thread("caller", "caller's threads", "", ""),
    Thread("task_handler", "task handler", "refpool-task-handler", "refpool.task_handler"),
    Thread("result_handler", "result handler", "refpool-result-handler", "refpool.result_handler"),
    Thread("worker_handler", "worker handler", "refpool-worker-handler", "refpool.worker_handler"),
    Thread("timekeeper", "timekeeper", "refpool-timekeeper", "refpool.timekeeper"),
    Thread("thread_worker", "thread workers", "ThreadPoolWorker-", "refpool.transport"),
    # terminate() of a pool dropped in a thread other than the main one.
    Thread("finalizer", "finalizer", "refpool-finalizer", "refpool.pool"),
    # cancel() of a buffered imap dropped unfinished.
    Thread("canceller", "canceller", "refpool-cancel-dropped", "refpool.buffered"),
)

COMPONENTS: Final[tuple[Component, ...]] = (
    Component(
        "caller",
        "caller",
        "refpool.pool:Pool",
        ("refpool.pool", "refpool.core", "refpool.buffered"),
        "caller",
        "the caller's threads (Pool, PoolCore, a buffered imap's input)",
    ),
    Component(
        "lifecycle", "lifecycle", "refpool.lifecycle:Lifecycle", ("refpool.lifecycle",), "data", "no thread"
    ),
    Component("job_cache", "job cache", "refpool.jobs:JobCache", ("refpool.jobs",), "data", "no thread"),
    Component(
        "task_handler",
        "task handler",
        "refpool.task_handler:TaskHandler",
        ("refpool.task_handler",),
        "thread",
        "thread refpool-task-handler",
    ),
    Component("roster", "roster", "refpool.roster:Roster", ("refpool.roster",), "data", "no thread"),
    Component(
        "transport",
        "transport",
        "refpool.transport:Transport",
        ("refpool.transport", "refpool.wire"),
        "channel",
        "pipes and processes, or inboxes and threads",
    ),
    Component(
        "workers",
        "workers",
        "refpool.worker:worker_loop",
        ("refpool.worker",),
        "workers",
        "processes, or threads ThreadPoolWorker-N",
    ),
    Component(
        "result_handler",
        "result handler",
        "refpool.result_handler:ResultHandler",
        ("refpool.result_handler",),
        "thread",
        "thread refpool-result-handler (and the callbacks)",
    ),
    Component(
        "worker_handler",
        "worker handler",
        "refpool.worker_handler:WorkerHandler",
        ("refpool.worker_handler",),
        "thread",
        "thread refpool-worker-handler",
    ),
    Component(
        "timekeeper",
        "timekeeper",
        "refpool.timekeeper:Timekeeper",
        ("refpool.timekeeper",),
        "thread",
        "thread refpool-timekeeper, from the first task with a timeout",
    ),
)

RECORDS: Final[tuple[Record, ...]] = (
    Record("TaskBatch", "refpool.task_handler"),
    Record("CLOSED", "refpool.task_handler", constant_of="QueueMark"),
    Record("TERMINATED", "refpool.task_handler", constant_of="QueueMark"),
    Record("ApplyResult", "refpool.jobs"),
    Record("MapResult", "refpool.jobs"),
    Record("Task", "refpool.messages"),
    Record("ReadyTask", "refpool.roster"),
    Record("SHUTDOWN", "refpool.messages", constant_of="Shutdown"),
    Record("SHUTDOWN_FRAME", "refpool.wire", constant_of="bytes"),
    Record("Outcome", "refpool.messages"),
    Record("WorkerExited", "refpool.messages"),
    Record("Handout", "refpool.roster"),
)

_ROSTER = "refpool.roster:Roster"


def _via(*targets: str) -> tuple[Via, ...]:
    return tuple(Via(target) for target in targets)


EDGES: Final[tuple[Edge, ...]] = (
    Edge(
        "caller",
        "lifecycle",
        (),
        _via("refpool.lifecycle:Lifecycle.fire"),
        note="every event; a submit is checked and queued under lifecycle.lock, in one step",
    ),
    Edge(
        "caller",
        "job_cache",
        ("ApplyResult", "MapResult"),
        (),
        note="each submit makes its job (or an IMapIterator), which adds itself to the cache",
    ),
    Edge(
        "caller",
        "task_handler",
        ("TaskBatch",),
        _via("refpool.core:PoolCore.enqueue"),
        note="the task queue (a SimpleQueue): a job's calls, read lazily for imap",
    ),
    Edge(
        "caller",
        "task_handler",
        ("CLOSED", "TERMINATED"),
        _via("refpool.core:PoolCore.close", "refpool.core:PoolCore.terminate"),
        note="marks on the task queue: no batch follows",
    ),
    Edge(
        "caller",
        "roster",
        (),
        _via(f"{_ROSTER}.cancel", f"{_ROSTER}.terminate"),
        note="a job cancelled (JobCache.withdraw, under lifecycle.lock); terminate(): no task goes out",
    ),
    Edge(
        "caller",
        "worker_handler",
        (),
        _via("refpool.worker_handler:WorkerHandler.maintain", "refpool.worker_handler:WorkerHandler.stop"),
        note="the first workers start in the constructor, before any thread; stop at terminate()",
    ),
    Edge(
        "caller",
        "timekeeper",
        (),
        _via("refpool.timekeeper:Timekeeper.start", "refpool.timekeeper:Timekeeper.stop"),
        note="started with the first job that has a timeout; stopped at terminate()",
    ),
    Edge(
        "caller",
        "transport",
        (),
        _via(
            "refpool.transport:ProcessWorker.kill",
            "refpool.transport:Transport.wake",
            "refpool.transport:Transport.close",
        ),
        note="terminate() kills the workers; join() closes the pipes once no handler runs",
    ),
    Edge(
        "job_cache",
        "caller",
        (),
        _via("refpool.jobs:ApplyResult.get"),
        called_by="receiver",
        note="the caller waits on its job: get(), or next() on an imap's iterator",
    ),
    Edge(
        "task_handler",
        "transport",
        ("Task",),
        _via("refpool.transport:Transport.encode"),
        note="each task encoded (pickled, for a process worker) before it is offered",
    ),
    Edge(
        "task_handler",
        "roster",
        ("ReadyTask",),
        _via(f"{_ROSTER}.offer", f"{_ROSTER}.wait_for_room", f"{_ROSTER}.begin_closing"),
        note="the least busy worker with room is recorded as holding each task, else it waits in `ready`",
    ),
    Edge(
        "task_handler",
        "job_cache",
        (),
        _via("refpool.jobs:JobCache.deliver"),
        note="an input that raised, or a task that cannot be encoded, fails its job here",
    ),
    Edge(
        "roster",
        "transport",
        ("SHUTDOWN",),
        _via("refpool.roster:write_outgoing", "refpool.roster:WorkerHandle.stop_now"),
        note="a worker's `outgoing` (numbered tasks, then its sentinel), written outside cond by the "
        "thread that changed the roster (Handout.send), under WorkerRecord.writing; stop_now: a task "
        "past its timeout",
    ),
    Edge(
        "transport",
        "workers",
        ("SHUTDOWN_FRAME",),
        _via("refpool.wire:task_frame", "refpool.wire:write_frames"),
        note="frames on the worker's inbox pipe; a thread worker's tasks go into its ThreadInbox",
    ),
    Edge(
        "workers",
        "transport",
        ("WorkerExited",),
        _via("refpool.wire:pack_outcome", "refpool.wire:write_frames"),
        note="one outcome frame per task on the outbox pipe; a thread worker says WorkerExited itself",
    ),
    Edge(
        "transport",
        "result_handler",
        ("Outcome", "WorkerExited"),
        _via("refpool.transport:Transport.wait"),
        called_by="receiver",
        note="(worker id, Outcome) pairs; WorkerExited once everything the worker sent has been read",
    ),
    Edge(
        "workers",
        "result_handler",
        (),
        _via(
            "refpool.result_handler:ResultHandler.deliver_in_worker",
            "refpool.result_handler:ResultHandler.report_in_worker",
        ),
        note="thread workers only, in their own threads: they settle their jobs and free their tasks "
        "in the roster themselves (settle_many)",
    ),
    Edge(
        "result_handler",
        "roster",
        (),
        _via(f"{_ROSTER}.settle", f"{_ROSTER}.exited", f"{_ROSTER}.reap", f"{_ROSTER}.reap_uninitialized"),
        note="frees the task of each outcome read; reaps an exited worker: fails its lost task, hands "
        "out the tasks behind it (a Handout, sent by this thread)",
    ),
    Edge(
        "result_handler",
        "job_cache",
        (),
        _via("refpool.jobs:JobCache.deliver"),
        note="each outcome, decoded; WorkerLostError or TaskTimeoutError for a lost task",
    ),
    Edge(
        "result_handler",
        "worker_handler",
        (),
        (Via("refpool.worker_handler:WorkerHandler.worker_reaped", called_as="_worker_reaped"),),
        note="a request on its queue: start a replacement; stop, once nothing is left to run",
    ),
    Edge(
        "result_handler",
        "transport",
        ("Outcome",),
        _via("refpool.transport:Transport.decode", "refpool.transport:Transport.release"),
        note="decodes payloads, releases a reaped worker's pipes; a thread worker defers here the "
        "outcome of a job with callbacks, so that callbacks run in this thread",
    ),
    Edge(
        "worker_handler",
        "roster",
        (),
        _via(f"{_ROSTER}.missing", f"{_ROSTER}.add", f"{_ROSTER}.serve_all"),
        note="under roster.cond: as many workers as are missing, each served in the same step",
    ),
    Edge(
        "worker_handler",
        "transport",
        (),
        _via("refpool.transport:Transport.start_worker", "refpool.transport:Transport.wake"),
        note="starts each worker; wakes the result handler to watch it",
    ),
    Edge(
        "timekeeper",
        "roster",
        (),
        _via(f"{_ROSTER}.expire_due"),
        note="stops the workers whose task is past its timeout; woken by the roster (on_timed_task)",
    ),
)

# Every lock the package makes (tests/test_diagrams.py fails on one missing here).
# "Terminating" threads are the caller's, the finalizer, or a callback's (the
# result handler): terminate() may be called from any of them.
_SETTLING: Final = ("caller", "task_handler", "result_handler", "thread_worker", "canceller", "finalizer")
_HANDING_OUT: Final = (
    "caller",
    "task_handler",
    "result_handler",
    "worker_handler",
    "timekeeper",
    "canceller",
)
_TERMINATING: Final = ("caller", "result_handler", "finalizer")

LOCKS: Final[tuple[Lock, ...]] = (
    Lock(
        "refpool.lifecycle:Lifecycle",
        "lock",
        "RLock",
        ("caller", "result_handler", "finalizer", "canceller"),
        ("refpool.lifecycle", "refpool.core", "refpool.pool"),
        "the pool's state; a submit's check and enqueue, atomic against close()",
    ),
    Lock(
        "refpool.roster:Roster",
        "cond",
        "Condition",
        (*_HANDING_OUT, "thread_worker", "finalizer"),
        ("refpool.roster", "refpool.worker_handler"),
        "which worker holds which task, `ready`, closing and terminating",
        over="_lock",
    ),
    Lock(
        "refpool.roster:WorkerRecord",
        "writing",
        "Lock",
        _HANDING_OUT,
        ("refpool.roster", "refpool.result_handler"),
        "one writer at a time to a worker's inbox, in order; none while it is released",
    ),
    Lock(
        "refpool.jobs:JobCache",
        "_lock",
        "Lock",
        _SETTLING,
        ("refpool.jobs",),
        "the unsettled jobs, by id",
    ),
    Lock(
        "refpool.jobs:ApplyResult",
        "_lock",
        "Lock",
        # Not the canceller's: it cancels only a buffered imap's job.
        ("caller", "task_handler", "result_handler", "thread_worker", "finalizer"),
        ("refpool.jobs",),
        "one settling of an apply or map job: its value, or its cancel",
    ),
    Lock(
        "refpool.jobs:IMapIterator",
        "_cond",
        "Condition",
        _SETTLING,
        ("refpool.jobs",),
        "an imap's outcomes in order, and the callers waiting in next()",
        over="_lock",
    ),
    Lock(
        "refpool.buffered:InputFeed",
        "_lock",
        "Lock",
        ("caller",),
        ("refpool.buffered",),
        "a buffered imap's input, drawn by one caller thread at a time",
    ),
    Lock(
        "refpool.result_handler:ResultHandler",
        "_soon_lock",
        "Lock",
        ("result_handler", "caller"),  # cancel() of an apply or map job with an error_callback
        ("refpool.result_handler",),
        "what must run in the callbacks' thread (a cancelled job's error_callback)",
    ),
    Lock(
        "refpool.timekeeper:Timekeeper",
        "_starting",
        "Lock",
        _TERMINATING,
        ("refpool.timekeeper",),
        "its thread, started once and never after stop()",
    ),
    Lock(
        "refpool.transport:ProcessWorker",
        "_joining",
        "Lock",
        _TERMINATING,
        ("refpool.transport",),
        "one join of a worker process, and its exit code",
    ),
    Lock(
        "refpool.transport:ProcessTransport",
        "_closing",
        "Lock",
        _TERMINATING,
        ("refpool.transport",),
        "closing the pipes once, by join() or terminate()",
    ),
)
