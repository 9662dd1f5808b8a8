"""The worker loop: what every worker runs, in a process or in a thread.

A worker runs the initializer, then takes tasks from its own inbox until it
receives the shutdown sentinel or has done `maxtasks` tasks, and sends one
outcome per task. It never decides which task to run: the parent assigns each
task to one worker, so a worker that dies is known to have held exactly the
tasks the parent recorded for it (see roster.py).
"""

from __future__ import annotations

import os
import selectors
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from queue import SimpleQueue
from typing import Any, Protocol

from . import wire
from .errors import MaybeEncodingError
from .messages import SHUTDOWN, Call, Outcome, Shutdown, Task, WorkerGone

# How often an idle process worker checks that its parent is still alive. An
# orphaned worker otherwise waits forever: with fork, its siblings inherit the
# write end of its inbox, so it never sees end-of-file.
PARENT_CHECK_INTERVAL = 1.0


class WorkerPort(Protocol):
    """A worker's two ends: tasks in, outcomes out."""

    def receive(self) -> Task | Shutdown: ...
    def open(self, call: Call | bytes | memoryview) -> Call: ...
    def reply(self, job_id: int, index: int, success: bool, value: Any) -> None: ...


def worker_loop(
    port: WorkerPort,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    maxtasks: int | None,
) -> None:
    if initializer is not None:
        initializer(*initargs)
    completed = 0
    while maxtasks is None or completed < maxtasks:
        try:
            task = port.receive()
        except (EOFError, OSError):
            return  # the parent has gone away
        if isinstance(task, Shutdown):
            return
        try:
            func, args, kwds = port.open(task.call)
            success, value = True, func(*args, **kwds)
        except Exception as exc:
            success, value = False, exc
        try:
            port.reply(task.job_id, task.position, success, value)
        except (EOFError, OSError):
            return
        del task, value  # do not keep the last result alive while idle
        completed += 1


def mapstar(args: tuple[Callable[..., Any], tuple[Any, ...]]) -> list[Any]:
    """Run one chunk of `map`."""
    return list(map(*args))


def starmapstar(args: tuple[Callable[..., Any], tuple[tuple[Any, ...], ...]]) -> list[Any]:
    """Run one chunk of `starmap`."""
    func, chunk = args
    return [func(*item) for item in chunk]


class ProcessPort:
    """A process worker's pipes; what travels on them is laid out in wire.py."""

    def __init__(self, inbox: Connection, outbox: Connection) -> None:
        self._inbox = inbox
        self._outbox = outbox
        self._parent = os.getppid()
        # One selector for the worker's life: Connection.poll makes a new one
        # per call, a cost paid once per task.
        self._incoming = selectors.DefaultSelector()
        self._incoming.register(inbox, selectors.EVENT_READ)

    def receive(self) -> Task | Shutdown:
        while not self._incoming.select(PARENT_CHECK_INTERVAL):
            if os.getppid() != self._parent:
                raise EOFError("the pool's process has exited")
        message = self._inbox.recv_bytes()
        if message == wire.SHUTDOWN_WIRE:
            return SHUTDOWN
        return Task(*wire.unpack_task(message))

    def open(self, call: Call | bytes | memoryview) -> Call:
        assert not isinstance(call, Call)
        return wire.open_call(call)

    def reply(self, job_id: int, index: int, success: bool, value: Any) -> None:
        remote_traceback = None if success else "".join(traceback.format_exception(value))
        try:
            payload = wire.dumps(value)
        except Exception as exc:
            # As CPython: a result that cannot be pickled fails its task only.
            success, remote_traceback = False, None
            payload = wire.dumps(MaybeEncodingError(exc, value))
        self._outbox.send_bytes(wire.pack_outcome(job_id, index, success, payload, remote_traceback))


def process_worker_main(
    inbox: Connection,
    outbox: Connection,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    maxtasks: int | None,
) -> None:
    worker_loop(ProcessPort(inbox, outbox), initializer, initargs, maxtasks)


class ThreadPort:
    """A thread worker's queues; nothing is pickled, as in CPython's ThreadPool."""

    def __init__(
        self,
        worker_id: int,
        inbox: SimpleQueue[Task | Shutdown],
        events: SimpleQueue[Any],
        killed: threading.Event,
    ) -> None:
        self._worker_id = worker_id
        self._inbox = inbox
        self._events = events
        self._killed = killed

    def receive(self) -> Task | Shutdown:
        task = self._inbox.get()
        # A thread cannot be killed; terminate() sets `killed`, and the worker
        # runs nothing more once it has finished its current task.
        return SHUTDOWN if self._killed.is_set() else task

    def open(self, call: Call | bytes | memoryview) -> Call:
        assert isinstance(call, Call)
        return call

    def reply(self, job_id: int, index: int, success: bool, value: Any) -> None:
        self._events.put((self._worker_id, Outcome(job_id, index, success, value, None)))


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
        worker_loop(port, initializer, initargs, maxtasks)
        exitcode = 0
    finally:
        # A process's death is seen through its sentinel; a thread says so
        # itself, after its last outcome, so none is read after WorkerGone.
        events.put(WorkerGone(worker_id, exitcode))
