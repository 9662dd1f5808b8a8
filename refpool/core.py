"""The pool's engine: the components wired together, and shutdown.

`PoolCore` owns the lifecycle, the job cache, the task queue, the roster, the
transport and the three handler threads. It never refers to the `Pool` object
the caller holds, so that a pool the caller drops can be garbage-collected and
terminated by its finalizer, as in CPython.
"""

from __future__ import annotations

import threading
from queue import SimpleQueue

from .errors import PoolTerminatedError
from .jobs import JobCache
from .lifecycle import Lifecycle, PoolEvent, PoolState
from .observer import Observer, StateChanged, safely
from .result_handler import ResultHandler
from .roster import Roster
from .task_handler import CLOSED, TERMINATED, QueueMark, TaskBatch, TaskHandler
from .timekeeper import Timekeeper
from .transport import Transport
from .worker_handler import WorkerHandler


class PoolCore:
    def __init__(
        self, processes: int, maxtasks: int | None, transport: Transport, observer: Observer | None = None
    ) -> None:
        self.processes = processes
        self._observe = None if observer is None else safely(observer)
        self.lifecycle = Lifecycle()
        self.cache = JobCache()
        self.roster = Roster(processes, maxtasks, transport.tasks_in_flight, self._observe)
        self._taskqueue: SimpleQueue[TaskBatch | QueueMark] = SimpleQueue()
        self._transport = transport
        self.worker_handler = WorkerHandler(self.roster, transport)
        self.task_handler = TaskHandler(self._taskqueue, self.roster, transport, self.cache)
        self.result_handler = ResultHandler(
            self.roster, transport, self.cache, self.worker_handler.worker_reaped, self._no_worker_needed
        )
        self.timekeeper = Timekeeper(self.roster)
        transport.bind(self.result_handler)
        self.cache.withdraw = self._withdraw
        self.cache.in_callback_thread = self.result_handler.in_callback_thread
        self._threads = [self.worker_handler.thread, self.task_handler.thread, self.result_handler.thread]
        self._terminated = threading.Event()

    def start(self) -> None:
        try:
            # The first workers start before any handler thread, so that a
            # forked worker comes from a parent with a single thread.
            self.worker_handler.maintain()
            for thread in self._threads:
                thread.start()
        except BaseException:
            self.terminate()
            raise
        self._fire(PoolEvent.STARTED)

    @property
    def state(self) -> PoolState:
        return self.lifecycle.state

    def check_running(self) -> None:
        if self.lifecycle.state is not PoolState.RUN:
            self.lifecycle.fire(PoolEvent.SUBMIT)  # raises "Pool not running"

    def _fire(self, event: PoolEvent) -> PoolState:
        """Apply a lifecycle event and report a change; returns the state before."""
        before = self.lifecycle.fire(event)
        self._report(before, event)
        return before

    def _report(self, before: PoolState, event: PoolEvent) -> None:
        if self._observe is not None and self.lifecycle.state is not before:
            self._observe(StateChanged(before, self.lifecycle.state, event))

    def enqueue(self, batch: TaskBatch) -> None:
        """Caller holds `lifecycle.lock` and has fired SUBMIT."""
        if batch.timeout is not None:
            self.timekeeper.start()
        self._taskqueue.put(batch)

    def _withdraw(self, job_id: int) -> None:
        """A job was cancelled: none of its unstarted tasks will run (CANCEL-1).

        Under the lifecycle's lock, as every enqueue is: a buffered imap that
        submits a task as its job is cancelled in another thread either has
        queued it before the roster marks the job (the task handler then
        drops it), or sees the job settled and queues nothing (pool.py).
        Otherwise the task handler could clear the mark between the two, and
        run the task."""
        with self.lifecycle.lock:
            handout = self.roster.cancel(job_id)
        handout.send()

    def _no_worker_needed(self) -> None:
        """The result handler has seen the last worker exit, with nothing left to run."""
        self.worker_handler.stop()
        self.timekeeper.stop()

    def close(self) -> None:
        with self.lifecycle.lock:
            if self._fire(PoolEvent.CLOSE) is PoolState.RUN:
                self._taskqueue.put(CLOSED)

    def terminate(self) -> None:
        with self.lifecycle.lock:
            before = self.lifecycle.fire(PoolEvent.TERMINATE)
            if before is PoolState.TERMINATE:
                return  # terminated already, or being terminated by another thread
            self.roster.terminate()  # from here no worker starts and no task goes out (WORK-2)
            self._report(before, PoolEvent.TERMINATE)
        try:
            self._stop_everything()
        finally:
            self._terminated.set()

    def _stop_everything(self) -> None:
        self._taskqueue.put(TERMINATED)
        self.worker_handler.stop()
        self.timekeeper.stop()
        _join_others([self.worker_handler.thread])  # so no worker starts behind our back
        for handle in self.roster.handles():
            handle.kill()
        self._transport.wake()
        _join_others([self.task_handler.thread, self.result_handler.thread])
        self.timekeeper.join()
        self.cache.abandon_all(
            lambda: PoolTerminatedError("the pool was terminated before this job finished")
        )
        if self._transport.kill_is_immediate:  # a thread ends only after its task
            for handle in self.roster.handles():
                handle.join()
        self._release_when_stopped()

    def join(self) -> None:
        self.lifecycle.fire(PoolEvent.JOIN)
        threads = self._threads
        in_callback = threading.current_thread() is self.result_handler.thread
        if in_callback:
            # join() from a callback. The worker handler and the timekeeper stop
            # when the result handler's loop ends, after this callback: waiting
            # for them here would wait for this very thread.
            threads = [t for t in threads if t is not self.worker_handler.thread]
        _join_others(threads)
        if not in_callback:
            self.timekeeper.join()
            # Only outside a callback: joining a worker process closes its exit descriptor, and the
            # result handler (a callback's own thread) waits on those descriptors again once the
            # callback returns: it would never see the workers go, and a later join() would
            # wait for ever. The result handler joins each worker it sees exit.
            for handle in self.roster.handles():
                handle.join()
        # A terminate() in another thread, begun before or during this join,
        # finishes first: until it has failed the unsettled jobs, join() has
        # not reached the end (SHUT-4, JOB-1; found by SPIN, models/pool.pml).
        if self.lifecycle.state is PoolState.TERMINATE:
            self._terminated.wait()
        self._release_when_stopped()

    def _release_when_stopped(self) -> None:
        """Close the transport once no handler thread can use it any more."""
        threads = [*self._threads, self.timekeeper.thread]
        if not any(thread is not None and thread.is_alive() for thread in threads):
            self._transport.close()


def _join_others(threads: list[threading.Thread]) -> None:
    """Join each started thread, except the caller's own (a callback may close or terminate)."""
    current = threading.current_thread()
    for thread in threads:
        if thread is not current and thread.ident is not None:
            thread.join()
