"""How the parent reaches its workers: processes over pipes, or threads over queues.

Everything else in refpool is the same for Pool and ThreadPool; only this
module knows what a worker is made of. Each transport can:
- start a worker, and give back a handle to send it tasks, kill and join it,
  with its claim word (claims.py) and its inbox budget (roster.py, WORK-7);
- encode a task for the wire (pickling, for processes) and decode a payload;
- wait for what workers send back: `(worker_id, Outcome)` pairs, and
  `WorkerExited` once a worker has exited and all that it sent has been read;
- wake that wait, when the set of workers has changed.

A process worker holds several tasks, written ahead into its pipe, so that
it never waits a round trip to the parent between tasks. A thread worker
holds several too, in an inbox in memory (claims.ThreadInbox): it takes
each task itself and settles its own outcomes, in-process
(worker.ThreadPort), so no other thread hands it its tasks one by one, and
nothing is pickled.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from queue import Empty, SimpleQueue
from typing import Any, Protocol

from . import wire
from .claims import SharedClaimWord, ThreadInbox
from .messages import INITIALIZER_FAILED, Call, Outcome, Shutdown, Task, WorkerExited
from .roster import Outgoing, WorkerHandle
from .worker import InProcessSettler, ThreadPort, process_worker_main, thread_worker_main

# An outcome from a worker; a worker exited; or a thread worker's outcome that it
# settled itself but whose job has callbacks, to deliver from the result handler.
Event = tuple[int, Outcome] | WorkerExited | Outcome
WorkerConfig = tuple[Any, tuple[Any, ...], int | None]  # initializer, initargs, maxtasks


# How many tasks a worker holds at once. With one, a process worker waits a
# round trip to the parent between tasks, and the parent's threads take turns
# once per task; with several, the parent writes and reads them in bursts, and
# a thread worker asks the roster for more once per several tasks. Measured
# here (benchmarks/README.md), imap over tiny items in processes took 1.2 to
# 1.6 times as long with 2 or 4 as with 8, and 0.95 times as long with 16:
# more would mostly make imap read further ahead (API-5) and leave more to
# take back when a worker goes idle.
TASKS_IN_FLIGHT = 8

# How long a worker's exit code may take to appear after join() returned,
# because another thread collected its exit status first (ProcessWorker.join).
_JOINED_ELSEWHERE = 1.0  # seconds

# When the pipe's capacity cannot be asked (not Linux): macOS pipes start at
# 16 KiB, and POSIX promises less; half of this is little enough for both.
_ASSUMED_PIPE_CAPACITY = 8192


class Transport(Protocol):
    kill_is_immediate: bool  # a process can be killed mid-task, a thread cannot
    tasks_in_flight: int  # the most tasks a worker holds at once (roster.py)

    def bind(self, settler: InProcessSettler) -> None:
        """How thread workers settle their own outcomes (see worker.ThreadPort)."""
        ...

    def defer(self, outcome: Outcome) -> None:
        """Have `wait` return this outcome, for the result handler to deliver (thread workers)."""
        ...

    def start_worker(self, worker_id: int) -> WorkerHandle: ...
    def encode(self, task: Task) -> object: ...
    def size(self, encoded: object) -> int:
        """The bytes an encoded task takes in a worker's inbox (WORK-7)."""
        ...

    def decode(self, payload: Any) -> Any: ...
    def wait(self, handles: tuple[WorkerHandle, ...]) -> list[Event]: ...
    def wake(self) -> None: ...
    def release(self, handle: WorkerHandle) -> None:
        """Close what the parent holds of a worker that has exited: its pipes and its claim word.
        Called by the result handler, the thread that `wait`s, with the worker's `writing` lock
        held, so that no other thread is writing to the inbox (SHUT-7)."""
        ...

    def close(self) -> None:
        """Release every worker not released yet and the transport's own descriptors; called
        once no handler thread runs (SHUT-7)."""
        ...


class ProcessWorker:
    in_process = False

    def __init__(
        self,
        worker_id: int,
        process: BaseProcess,
        inbox: Connection,
        outbox: Connection,
        claims: SharedClaimWord,
    ) -> None:
        self.worker_id = worker_id
        self.process = process
        # Kept: once the process object is closed (its exit descriptor released),
        # it answers nothing, not even its pid.
        self._pid = process.pid
        self.exitcode: int | None = None  # set by `join`
        self._joining = threading.Lock()  # the result handler and join() may both join
        self.inbox = inbox  # parent writes tasks
        self.outbox = outbox  # parent reads outcomes
        self.outbox_open = True
        # Outcomes are read as they arrive, several at a time, never waiting
        # for the rest of one: the outbox is read only when select() says so.
        os.set_blocking(outbox.fileno(), False)
        self.reader = wire.FrameReader()
        self.initializer_failure: Outcome | None = None  # its last word, if its initializer raised
        self.claims = claims
        self.inbox_budget = inbox_budget(inbox)

    @property
    def pid(self) -> int | None:
        return self._pid

    def send(self, items: Sequence[Outgoing]) -> None:
        """Write these tasks and sentinels, in order, in as few writes as the pipe allows."""
        buffers: list[bytes | memoryview] = []
        for item in items:
            if isinstance(item, Shutdown):
                buffers += wire.frame(wire.SHUTDOWN_FRAME)
            else:
                number, packed = item
                assert isinstance(packed, bytes)
                buffers += wire.task_frame(number, packed)
        wire.write_frames(self.inbox.fileno(), buffers)

    def kill(self) -> None:
        # Not under `_joining`: a join may be waiting for this very kill.
        with contextlib.suppress(ValueError):  # closed meanwhile by `join`: it has exited
            if self.process.exitcode is None:
                self.process.terminate()

    def stop_now(self) -> None:
        with contextlib.suppress(ValueError):  # closed meanwhile by `join`: it has exited
            if self.process.exitcode is None:
                self.process.kill()

    def join(self) -> None:
        """Wait for the process to exit, then close the process object (its exit descriptor)."""
        with self._joining:
            if self.exitcode is None:
                self.process.join()
                # A Process.start() in another thread collects the exit status of every
                # exited child (multiprocessing's _cleanup); if it took this one's first, join()
                # returned before that thread recorded the exit code: wait for it.
                deadline = time.monotonic() + _JOINED_ELSEWHERE
                while self.process.exitcode is None and time.monotonic() < deadline:
                    time.sleep(0.001)
                self.exitcode = self.process.exitcode
                if self.exitcode is not None:  # else waited for by the program itself: left to the collector
                    self.process.close()

    def is_alive(self) -> bool:
        try:
            return self.process.is_alive()
        except ValueError:  # closed by `join`
            return False

    def release(self) -> None:
        """Close the parent's ends of the pipes and its claim word; the process object is
        closed by `join`, once the process has exited."""
        self.outbox_open = False
        self.inbox.close()
        self.outbox.close()
        self.claims.close()


def inbox_budget(inbox: Connection) -> int:
    """Half the capacity of the worker's inbox pipe (WORK-7).

    What waits in a busy worker's pipe stays within it, so writing there never
    blocks. Half, not all: a worker that holds nothing is given one task of any
    size (it is reading its inbox), and the tasks taken back from it may still
    be unread behind it; the roster counts those against the budget (roster.py).
    """
    try:
        capacity = fcntl.fcntl(inbox.fileno(), fcntl.F_GETPIPE_SZ)
    except (AttributeError, OSError):
        capacity = _ASSUMED_PIPE_CAPACITY
    return capacity // 2


class ProcessTransport:
    kill_is_immediate = True
    tasks_in_flight = TASKS_IN_FLIGHT

    def __init__(self, context: BaseContext, config: WorkerConfig) -> None:
        self._context = context
        self._config = config
        self._pickler = wire.Pickler()
        # A self-pipe that wakes the result handler; non-blocking, so that
        # waking a handler that has stopped reading never blocks.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._closing = threading.Lock()
        # One selector for the pool's life (multiprocessing.connection.wait
        # makes a new one per call, a cost paid per task here). Only the
        # result handler uses it; `_watched` says what it is registered for.
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._watched: dict[int, tuple[ProcessWorker, bool]] = {}
        self._watched_handles: tuple[WorkerHandle, ...] = ()
        # Every worker started and not yet released: what `close` releases.
        self._unreleased: dict[int, ProcessWorker] = {}

    def bind(self, settler: InProcessSettler) -> None:
        pass  # a process worker's outcomes come back over its pipe

    def defer(self, outcome: Outcome) -> None:
        raise NotImplementedError("only thread workers settle their own outcomes")

    def start_worker(self, worker_id: int) -> ProcessWorker:
        inbox_r, inbox_w = self._context.Pipe(duplex=False)
        outbox_r, outbox_w = self._context.Pipe(duplex=False)
        claims = SharedClaimWord()
        process = self._context.Process(  # type: ignore[attr-defined]
            target=process_worker_main,
            args=(inbox_r, outbox_w, claims, os.getpid(), *self._config),
            daemon=True,
        )
        process.name = process.name.replace("Process", "PoolWorker")  # as CPython
        process.start()
        # Close the worker's ends here, so the parent's copies cannot leak
        # into workers forked later and the pipes end when the worker does.
        inbox_r.close()
        outbox_w.close()
        worker = ProcessWorker(worker_id, process, inbox_w, outbox_r, claims)
        self._unreleased[worker_id] = worker
        return worker

    def encode(self, task: Task) -> bytes:
        """Called by the task handler alone: `_pickler` is for one thread."""
        assert isinstance(task.call, Call)
        return wire.pack_task(task.job_id, task.position, task.call, self._pickler)

    def size(self, encoded: object) -> int:
        assert isinstance(encoded, bytes)
        return len(encoded) + wire.TASK_OVERHEAD

    def decode(self, payload: Any) -> Any:
        return wire.loads(payload)

    def wait(self, handles: tuple[WorkerHandle, ...]) -> list[Event]:
        if handles is not self._watched_handles:
            self._watch([h for h in handles if isinstance(h, ProcessWorker)])
            self._watched_handles = handles
        events: list[Event] = []
        exited: list[ProcessWorker] = []
        for key, _ in self._selector.select():
            if key.data is None:
                os.read(self._wake_r, 65536)
                continue
            worker, is_exit_descriptor = key.data
            if is_exit_descriptor:
                exited.append(worker)
            elif worker.outbox_open:
                # What has arrived, in one read: as many outcomes as are there.
                events.extend(self._receive(worker))
        for worker in exited:
            # The process has exited, so everything it wrote is in the pipe:
            # read it all before saying it has exited.
            self._unwatch(worker)  # before `join` closes its exit descriptor: see `_unwatch`
            events.extend(self._drain(worker))
            worker.join()
            events.append(WorkerExited(worker.worker_id, worker.exitcode, worker.initializer_failure))
        return events

    def release(self, handle: WorkerHandle) -> None:
        assert isinstance(handle, ProcessWorker)
        if self._unreleased.pop(handle.worker_id, None) is None:
            return
        self._unwatch(handle)
        handle.release()

    def _unwatch(self, worker: ProcessWorker) -> None:
        """Stop watching a worker's outbox and exit descriptor; always before they are closed.

        A descriptor closed while registered stays in the epoll set as long as
        a forked worker still holds a copy of it, under the same number; once
        the number is another worker's, that stale entry reports the new
        worker's pipe as ready, and its exit descriptor as fired while it still runs
        (found by the stateful test: an outcome read after its worker was
        declared exited, and its task failed as lost).
        """
        for fd, (watched, _) in list(self._watched.items()):
            if watched is worker:
                self._selector.unregister(fd)
                del self._watched[fd]
        self._watched_handles = ()  # `_watch` again at the next wait

    def _watch(self, workers: list[ProcessWorker]) -> None:
        """Register the outboxes and exit descriptors (Process.sentinel) of these workers, and only theirs."""
        wanted: dict[int, tuple[ProcessWorker, bool]] = {}
        for worker in workers:
            if worker.outbox_open:
                wanted[worker.outbox.fileno()] = (worker, False)
            wanted[worker.process.sentinel] = (worker, True)
        # A file descriptor number may have been reused for another worker.
        for fd, entry in self._watched.items():
            if wanted.get(fd) != entry:
                self._selector.unregister(fd)
        for fd, entry in wanted.items():
            if self._watched.get(fd) != entry:
                self._selector.register(fd, selectors.EVENT_READ, entry)
        self._watched = wanted

    def _receive(self, worker: ProcessWorker) -> list[Event]:
        """The outcomes that have arrived from this worker, in one read; none if nothing has."""
        data = self._read(worker)
        if not data:
            return []
        return self._outcomes(worker, data)

    def _drain(self, worker: ProcessWorker) -> list[Event]:
        """Everything left in an exited worker's pipe. Never waits for the pipe's end: a
        process that a task started may still hold it open."""
        events: list[Event] = []
        while (data := self._read(worker)) is not None:
            events += self._outcomes(worker, data)
        return events

    def _outcomes(self, worker: ProcessWorker, data: bytes) -> list[Event]:
        events: list[Event] = []
        for frame in worker.reader.feed(data):
            outcome = wire.unpack_outcome(frame)
            if outcome.job_id == INITIALIZER_FAILED:
                worker.initializer_failure = outcome  # it exits next: said with WorkerExited
            else:
                events.append((worker.worker_id, outcome))
        return events

    def _read(self, worker: ProcessWorker) -> bytes | None:
        """What has arrived in the outbox; None if nothing has, or if it has ended."""
        if not worker.outbox_open:
            return None
        try:
            data = os.read(worker.outbox.fileno(), wire.READ_SIZE)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if not data:
            self._outbox_ended(worker)
            return None
        return data

    def _outbox_ended(self, worker: ProcessWorker) -> None:
        """Stop watching an outbox at its end; else select() would report it again and again."""
        worker.outbox_open = False
        fd = worker.outbox.fileno()
        if self._watched.get(fd) == (worker, False):
            self._selector.unregister(fd)
            del self._watched[fd]

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # pending already, or closed
            os.write(self._wake_w, b"!")

    def close(self) -> None:
        """Maybe called by two threads at once (join and terminate)."""
        with self._closing:
            for worker in list(self._unreleased.values()):
                self.release(worker)
            if self._wake_r >= 0:
                self._selector.close()
                os.close(self._wake_r)
                os.close(self._wake_w)
                self._wake_r = self._wake_w = -1


class ThreadWorker:
    in_process = True
    inbox_budget = None  # putting into its inbox never blocks

    def __init__(self, worker_id: int, thread: threading.Thread, inbox: ThreadInbox) -> None:
        self.worker_id = worker_id
        self.thread = thread
        self.inbox = inbox
        self.claims = inbox  # the parent takes back from the deque's other end (claims.py)
        self.killed = threading.Event()

    @property
    def pid(self) -> int | None:
        return os.getpid()

    def send(self, items: Sequence[Outgoing]) -> None:
        self.inbox.put(items)

    def kill(self) -> None:
        self.killed.set()
        self.inbox.ring()

    def stop_now(self) -> None:
        raise NotImplementedError("a thread cannot be stopped; ThreadPool refuses timeouts (TIME-4)")

    def join(self) -> None:
        if self.thread is not threading.current_thread():
            self.thread.join()

    def is_alive(self) -> bool:
        return self.thread.is_alive()


class _Wake:
    pass


_WAKE = _Wake()


class ThreadTransport:
    kill_is_immediate = False
    tasks_in_flight = TASKS_IN_FLIGHT

    def __init__(self, config: WorkerConfig) -> None:
        self._config = config
        self._events: SimpleQueue[Event | _Wake] = SimpleQueue()
        self._settler: InProcessSettler | None = None

    def bind(self, settler: InProcessSettler) -> None:
        self._settler = settler

    def defer(self, outcome: Outcome) -> None:
        self._events.put(outcome)

    def start_worker(self, worker_id: int) -> ThreadWorker:
        assert self._settler is not None, "bind() first"
        inbox = ThreadInbox()
        thread = threading.Thread(name=f"ThreadPoolWorker-{worker_id}", daemon=True)
        worker = ThreadWorker(worker_id, thread, inbox)
        port = ThreadPort(worker_id, inbox, self._settler, worker.killed)
        thread._target = thread_worker_main  # type: ignore[attr-defined]
        thread._args = (port, worker_id, self._events, *self._config)  # type: ignore[attr-defined]
        thread.start()
        return worker

    def encode(self, task: Task) -> Task:
        assert isinstance(task.call, Call)
        return task

    def size(self, encoded: object) -> int:
        return 0  # nothing waits in a pipe

    def decode(self, payload: Any) -> Any:
        return payload

    def wait(self, handles: tuple[WorkerHandle, ...]) -> list[Event]:
        received = [self._events.get()]
        try:
            while len(received) < 1000:
                received.append(self._events.get_nowait())
        except Empty:
            pass
        return [event for event in received if not isinstance(event, _Wake)]

    def wake(self) -> None:
        self._events.put(_WAKE)

    def release(self, handle: WorkerHandle) -> None:
        pass  # a thread's inbox is a deque: the collector frees it

    def close(self) -> None:
        pass  # queues need no closing
