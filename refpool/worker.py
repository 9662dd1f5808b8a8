"""The worker loop: what every worker runs, in a process or in a thread.

A worker runs the initializer, then takes tasks from its own inbox, in order,
until it receives the shutdown sentinel or has done `maxtasks` tasks, and
sends one outcome per task. It never decides which task to run: the parent
assigns each task to one worker, so a worker that dies is known to have held
exactly the tasks the parent recorded for it (see roster.py). Before it
starts a task it claims it (claims.py): a task the parent has taken back in
the meantime is skipped, and runs in another worker instead.
"""

from __future__ import annotations

import collections
import contextlib
import os
import select
import selectors
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection

# Not through refpool.errors, the same class: that module also defines the
# parent's errors, and importing what they need (concurrent.futures) cost
# each spawned worker 5 ms (benchmarks, case 1).
from multiprocessing.pool import MaybeEncodingError  # type: ignore[attr-defined]
from queue import SimpleQueue
from typing import Any, Protocol

from . import wire
from .claims import SharedClaimWord, ThreadInbox
from .messages import (
    INITIALIZER_FAILED,
    SHUTDOWN,
    Call,
    CallTuple,
    Outcome,
    Shutdown,
    Task,
    TaskKey,
    WorkerExited,
)

# Where the kernel cannot tell a process that another has exited (no
# pidfd_open: not Linux), how often a process worker checks its parent.
PARENT_CHECK_INTERVAL = 1.0


Numbered = tuple[int, Task]  # a task and its number among those sent to this worker


class WorkerPort(Protocol):
    """A worker's two ends: tasks in, outcomes out."""

    def receive(self) -> Numbered | Shutdown: ...
    def claim(self, number: int) -> bool:
        """Before starting task `number`: False if the parent has taken it back (claims.py)."""
        ...

    def open(self, call: Call | bytes | memoryview) -> CallTuple: ...
    def reply(self, job_id: int, position: int, success: bool, value: Any) -> None: ...
    def initializer_failed(self, error: Exception) -> None:
        """Tell the parent the initializer raised, so no task started here (LOST-4)."""
        ...


def worker_loop(
    port: WorkerPort,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    maxtasks: int | None,
) -> bool:
    """Run tasks until told to stop; False if the initializer raised (then no task ran)."""
    if initializer is not None:
        try:
            initializer(*initargs)
        except Exception as exc:
            # The parent hands this worker's tasks to others, and fails them
            # with this exception only if its replacements keep failing (LOST-4).
            with contextlib.suppress(EOFError, OSError):
                port.initializer_failed(exc)
            return False
    completed = 0
    while maxtasks is None or completed < maxtasks:
        try:
            received = port.receive()
        except (EOFError, OSError):
            return True  # the parent has exited
        if isinstance(received, Shutdown):
            return True
        ran = _run_task(port, *received)
        # Nothing of a finished task stays referenced while the worker waits
        # for the next (SHUT-8): the task's locals ended with `_run_task`.
        del received
        if ran is None:
            return True
        if ran:
            completed += 1
    return True


def _run_task(port: WorkerPort, number: int, task: Task) -> bool | None:
    """Claim and run one task and send its outcome: True if it ran, False if it was taken back
    (it runs in another worker, WORK-6, and does not count here), None if the parent has exited."""
    if not port.claim(number):
        return False
    try:
        func, args, kwds = port.open(task.call)
        success, value = True, func(*args, **kwds)
    except Exception as exc:
        success, value = False, exc
    try:
        port.reply(task.job_id, task.position, success, value)
    except (EOFError, OSError):
        return None
    return True


def mapstar(args: tuple[Callable[..., Any], tuple[Any, ...]]) -> list[Any]:
    """Run one chunk of `map`."""
    return list(map(*args))


def starmapstar(args: tuple[Callable[..., Any], tuple[tuple[Any, ...], ...]]) -> list[Any]:
    """Run one chunk of `starmap`."""
    func, chunk = args
    return [func(*item) for item in chunk]


class ProcessPort:
    """A process worker's pipes; what travels on them is laid out in wire.py."""

    def __init__(self, inbox: Connection, outbox: Connection, claims: SharedClaimWord) -> None:
        # The Connections keep the descriptors open; they are read and written
        # as frames, several at a time (wire.py), not with recv_bytes and send_bytes.
        self._inbox = inbox
        self._outbox = outbox
        self._claims = claims
        self._pickler = wire.Pickler()
        self._reader = wire.FrameReader()
        self._frames: collections.deque[bytes | memoryview] = collections.deque()
        # One selector for the worker's life: Connection.poll makes a new one
        # per call, a cost paid once per task.
        self._incoming = selectors.DefaultSelector()
        self._incoming.register(inbox, selectors.EVENT_READ)

    def receive(self) -> Numbered | Shutdown:
        while not self._frames:
            self._incoming.select()
            data = os.read(self._inbox.fileno(), wire.READ_SIZE)
            if not data:
                raise EOFError("the pool closed this worker's inbox")
            self._frames.extend(self._reader.feed(data))
        message = self._frames.popleft()
        if message == wire.SHUTDOWN_FRAME:
            return SHUTDOWN
        number, job_id, position, call = wire.unpack_task(message)
        return number, Task(job_id, position, call)

    def claim(self, number: int) -> bool:
        return self._claims.claim(number)

    def open(self, call: Call | bytes | memoryview) -> CallTuple:
        assert not isinstance(call, Call)
        return wire.open_call(call)

    def reply(self, job_id: int, position: int, success: bool, value: Any) -> None:
        remote_traceback = None if success else "".join(traceback.format_exception(value))
        try:
            payload = self._pickler.dumps(value)
        except Exception as exc:
            # As CPython: a result that cannot be pickled fails its task only.
            success, remote_traceback = False, None
            payload = self._pickler.dumps(MaybeEncodingError(exc, value))
        outcome = wire.pack_outcome(job_id, position, success, payload, remote_traceback)
        # One outcome per write, never several: an outcome held back while the
        # next task runs would make a crash lose a task that had finished.
        wire.write_frames(self._outbox.fileno(), wire.frame(outcome))

    def initializer_failed(self, error: Exception) -> None:
        self.reply(INITIALIZER_FAILED, 0, False, error)  # an outcome of no job: see transport.py


def process_worker_main(
    inbox: Connection,
    outbox: Connection,
    claims: SharedClaimWord,
    pool_pid: int,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    maxtasks: int | None,
) -> None:
    watch_pool(pool_pid)
    if not worker_loop(ProcessPort(inbox, outbox, claims), initializer, initargs, maxtasks):
        sys.exit(1)  # as CPython's worker, whose initializer's exception ends it, but quietly


def watch_pool(pool_pid: int) -> None:
    """End this process when the pool's process exits, whether this worker waits for a task or
    is in the middle of one: no one is left to read its outcomes (SHUT-10).

    Its inbox does not end by itself: with fork, its siblings inherit the
    inbox's write end. Nor does its parent's exit always tell: a forkserver
    worker's parent is the fork server, which lives as long as any of its
    children (each holds the fork server's "alive" pipe).
    """

    def watch() -> None:
        try:
            exited = os.pidfd_open(pool_pid)  # readable once that process has exited
        except ProcessLookupError:
            os._exit(1)  # it exited before it could be watched
        except (AttributeError, OSError):  # no pidfd (not Linux): ask the parent, now and then
            parent = os.getppid()
            while os.getppid() == parent:
                time.sleep(PARENT_CHECK_INTERVAL)
        else:
            select.select([exited], [], [])
        os._exit(1)

    threading.Thread(target=watch, name="refpool-pool-watch", daemon=True).start()


class InProcessSettler(Protocol):
    """What a thread worker does with its outcomes, in its own thread (result_handler.py)."""

    def deliver_in_worker(self, job_id: int, position: int, success: bool, value: Any) -> None: ...
    def report_in_worker(self, worker_id: int, finished: list[tuple[TaskKey, bool]], more: bool) -> None:
        """Free the finished tasks in the roster; with `more`, the worker is out of tasks, and
        the roster puts into its inbox what it can take now, or its sentinel."""
        ...


class ThreadPort:
    """A thread worker's side: nothing is pickled, and no other thread hands its tasks over.

    It settles each job itself, at once, and takes its next task from its
    inbox itself; it tells the roster which tasks it has finished only when
    its inbox is empty, so that it takes the roster's lock once per several
    tasks, not once per task.
    """

    def __init__(
        self, worker_id: int, inbox: ThreadInbox, settler: InProcessSettler, killed: threading.Event
    ) -> None:
        self._worker_id = worker_id
        self._inbox = inbox
        self._settler = settler
        self._killed = killed
        self._finished: list[tuple[TaskKey, bool]] = []
        self.initializer_failure: Outcome | None = None

    def receive(self) -> Numbered | Shutdown:
        # A thread cannot be killed; terminate() sets `killed`, and the worker
        # runs nothing more once it has finished its current task.
        while not self._killed.is_set():
            received = self._inbox.take()
            if received is None:
                self.report(more=True)
                received = self._inbox.take()
            if received is not None:
                return received  # type: ignore[no-any-return]
            self._inbox.wait(self._killed.is_set)
        return SHUTDOWN

    def claim(self, number: int) -> bool:
        return True  # taking it from the inbox was the claim (claims.ThreadInbox)

    def open(self, call: Call | bytes | memoryview) -> CallTuple:
        assert isinstance(call, Call)
        return call

    def reply(self, job_id: int, position: int, success: bool, value: Any) -> None:
        self._settler.deliver_in_worker(job_id, position, success, value)
        self._finished.append(((job_id, position), success))

    def initializer_failed(self, error: Exception) -> None:
        # sent with WorkerExited
        self.initializer_failure = Outcome(INITIALIZER_FAILED, 0, False, error, None)

    def report(self, more: bool) -> None:
        finished, self._finished = self._finished, []
        self._settler.report_in_worker(self._worker_id, finished, more)


def thread_worker_main(
    port: ThreadPort,
    worker_id: int,
    events: SimpleQueue[Any],
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    maxtasks: int | None,
) -> None:
    exitcode = 1
    try:
        if worker_loop(port, initializer, initargs, maxtasks):
            exitcode = 0
    finally:
        # A process's death is seen through its exit descriptor; a thread says so
        # itself, after its last outcome, so none is read after WorkerExited.
        port.report(more=False)
        events.put(WorkerExited(worker_id, exitcode, port.initializer_failure))
