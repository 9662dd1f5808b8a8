"""The timekeeper: stops a worker whose task runs past its `timeout` (TIME-1, TIME-2).

A thread of its own, started with the pool's first task that has a timeout,
so that a pool that never uses one pays nothing. It sleeps until the first
moment a task held now could be due, then asks the roster to stop the
workers whose running task is past its time (`Roster.expire_due`): the
roster takes back their unstarted tasks, for other workers, and kills them;
the result handler then fails the task with TaskTimeoutError and the worker
handler replaces the worker, as after any death.

A task's clock starts when its worker claims it, which the worker writes
into its claim word (claims.py). The timekeeper cannot be told when that
happens, so it plans for the earliest: a task not yet started is looked at
again `timeout` from now, the soonest it could be due; one that has started
is looked at when it is due. It is woken whenever a timed task is handed out.

Stops when: the pool is terminating, or it is told to (join, terminate).
"""

from __future__ import annotations

import threading
import time

from .roster import Roster


class Timekeeper:
    def __init__(self, roster: Roster) -> None:
        self._roster = roster
        self._wake = threading.Event()
        self._stopping = False
        self._starting = threading.Lock()
        self.thread: threading.Thread | None = None
        roster.on_timed_task = self._wake.set

    def start(self) -> None:
        """Start the thread, once; called when a job with a timeout is submitted."""
        with self._starting:
            if self.thread is None and not self._stopping:
                self.thread = threading.Thread(target=self._run, name="refpool-timekeeper", daemon=True)
                self.thread.start()

    def stop(self) -> None:
        with self._starting:
            self._stopping = True
        self._wake.set()

    def join(self) -> None:
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join()

    def _run(self) -> None:
        while not self._stopping and not self._roster.terminating:
            # Cleared before the roster is read: a timed task handed out after
            # this sets it again, and the wait below returns at once.
            self._wake.clear()
            handout, delay = self._roster.expire_due(time.monotonic_ns())
            handout.send()
            self._wake.wait(delay)
