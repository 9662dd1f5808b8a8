"""How the parent reaches its workers: processes over pipes, or threads over queues.

Everything else in refpool is the same for Pool and ThreadPool; only this
module knows what a worker is made of. Each transport can:
- start a worker, and give back a handle to send it tasks, kill and join it;
- encode a task for the wire (pickling, for processes) and decode a payload;
- wait for what workers send back: `(worker_id, Outcome)` pairs, and
  `WorkerGone` once a worker has exited and all that it sent has been read;
- wake that wait, when the set of workers has changed.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from queue import Empty, SimpleQueue
from typing import Any, Protocol

from . import wire
from .messages import SHUTDOWN, Call, Outcome, Shutdown, Task, WorkerGone
from .roster import WorkerHandle
from .worker import ThreadPort, process_worker_main, thread_worker_main

Event = tuple[int, Outcome] | WorkerGone
WorkerConfig = tuple[Any, tuple[Any, ...], int | None]  # initializer, initargs, maxtasks


class Transport(Protocol):
    kill_is_immediate: bool  # a process can be killed mid-task, a thread cannot

    def start_worker(self, worker_id: int) -> WorkerHandle: ...
    def encode(self, task: Task) -> object: ...
    def decode(self, payload: Any) -> Any: ...
    def wait(self, handles: tuple[WorkerHandle, ...]) -> list[Event]: ...
    def wake(self) -> None: ...
    def close(self) -> None: ...


class ProcessWorker:
    def __init__(self, worker_id: int, process: BaseProcess, inbox: Connection, outbox: Connection) -> None:
        self.worker_id = worker_id
        self.process = process
        self.inbox = inbox  # parent writes tasks
        self.outbox = outbox  # parent reads outcomes
        self.outbox_open = True

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def send(self, wire: object) -> None:
        assert isinstance(wire, bytes)
        self.inbox.send_bytes(wire)

    def send_shutdown(self) -> None:
        with contextlib.suppress(OSError):  # it has died; the result handler will see it go
            self.inbox.send_bytes(wire.SHUTDOWN_WIRE)

    def kill(self) -> None:
        if self.process.exitcode is None:
            self.process.terminate()

    def join(self) -> None:
        self.process.join()

    def is_alive(self) -> bool:
        return self.process.is_alive()


class ProcessTransport:
    kill_is_immediate = True

    def __init__(self, context: BaseContext, config: WorkerConfig) -> None:
        self._context = context
        self._config = config
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

    def start_worker(self, worker_id: int) -> ProcessWorker:
        inbox_r, inbox_w = self._context.Pipe(duplex=False)
        outbox_r, outbox_w = self._context.Pipe(duplex=False)
        process = self._context.Process(  # type: ignore[attr-defined]
            target=process_worker_main, args=(inbox_r, outbox_w, *self._config), daemon=True
        )
        process.name = process.name.replace("Process", "PoolWorker")  # as CPython
        process.start()
        # Close the worker's ends here, so the parent's copies cannot leak
        # into workers forked later and the pipes end when the worker does.
        inbox_r.close()
        outbox_w.close()
        return ProcessWorker(worker_id, process, inbox_w, outbox_r)

    def encode(self, task: Task) -> bytes:
        assert isinstance(task.call, Call)
        return wire.pack_task(task.job_id, task.position, task.call)

    def decode(self, payload: Any) -> Any:
        return wire.loads(payload)

    def wait(self, handles: tuple[WorkerHandle, ...]) -> list[Event]:
        if handles is not self._watched_handles:
            self._watch([h for h in handles if isinstance(h, ProcessWorker)])
            self._watched_handles = handles
        events: list[Event] = []
        gone: list[ProcessWorker] = []
        for key, _ in self._selector.select():
            if key.data is None:
                os.read(self._wake_r, 65536)
                continue
            worker, is_sentinel = key.data
            if is_sentinel:
                gone.append(worker)
            elif worker.outbox_open:
                # One outcome per worker is due at most (it holds one task);
                # if more are there, the next select() reports them.
                events.extend(self._receive(worker))
        for worker in gone:
            # The process has exited, so everything it wrote is in the pipe:
            # read it all before saying it is gone.
            events.extend(self._drain(worker))
            worker.process.join()
            events.append(WorkerGone(worker.worker_id, worker.process.exitcode))
        return events

    def _watch(self, workers: list[ProcessWorker]) -> None:
        """Register the outboxes and sentinels of these workers, and only theirs."""
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
        try:
            return [(worker.worker_id, wire.unpack_outcome(worker.outbox.recv_bytes()))]
        except (EOFError, OSError):
            self._outbox_ended(worker)
            return []

    def _drain(self, worker: ProcessWorker) -> list[Event]:
        events: list[Event] = []
        try:
            while worker.outbox_open and worker.outbox.poll():
                events.append((worker.worker_id, wire.unpack_outcome(worker.outbox.recv_bytes())))
        except (EOFError, OSError):
            self._outbox_ended(worker)
        return events

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
        """Release the wake pipe; called once no handler thread runs, maybe by two threads."""
        with self._closing:
            if self._wake_r >= 0:
                self._selector.close()
                os.close(self._wake_r)
                os.close(self._wake_w)
                self._wake_r = self._wake_w = -1


class ThreadWorker:
    def __init__(
        self,
        worker_id: int,
        thread: threading.Thread,
        inbox: SimpleQueue[Task | Shutdown],
        killed: threading.Event,
    ) -> None:
        self.worker_id = worker_id
        self.thread = thread
        self.inbox = inbox
        self.killed = killed

    @property
    def pid(self) -> int | None:
        return os.getpid()

    def send(self, wire: object) -> None:
        assert isinstance(wire, Task)
        self.inbox.put(wire)

    def send_shutdown(self) -> None:
        self.inbox.put(SHUTDOWN)

    def kill(self) -> None:
        self.killed.set()
        self.inbox.put(SHUTDOWN)

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

    def __init__(self, config: WorkerConfig) -> None:
        self._config = config
        self._events: SimpleQueue[Event | _Wake] = SimpleQueue()

    def start_worker(self, worker_id: int) -> ThreadWorker:
        inbox: SimpleQueue[Task | Shutdown] = SimpleQueue()
        killed = threading.Event()
        port = ThreadPort(worker_id, inbox, self._events, killed)
        thread = threading.Thread(
            target=thread_worker_main,
            args=(port, worker_id, self._events, *self._config),
            name=f"ThreadPoolWorker-{worker_id}",
            daemon=True,
        )
        thread.start()
        return ThreadWorker(worker_id, thread, inbox, killed)

    def encode(self, task: Task) -> Task:
        assert isinstance(task.call, Call)
        return task

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

    def close(self) -> None:
        pass  # queues need no closing
