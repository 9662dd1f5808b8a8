"""The worker handler: keeps the number of workers exact.

It starts the first workers (from the constructor, before any thread runs, so
that fork happens in a single-threaded parent) and, each time the result
handler reports a worker gone, starts replacements. `Roster.missing()` says how
many: none once shutdown has begun or the pool is terminating. Starting happens
under the roster's lock, so a worker cannot appear after the task handler has
counted the workers that need a shutdown sentinel.

Stops when: told to, by the task handler after the sentinels or by terminate().
"""

from __future__ import annotations

import queue
import threading
import traceback
from typing import Final

from .roster import Roster
from .transport import Transport

_CHANGED: Final = "changed"
_STOP: Final = "stop"
RETRY_AFTER_START_FAILURE = 0.5  # seconds: a failed start (no fds, no memory) is retried


class WorkerHandler:
    def __init__(self, roster: Roster, transport: Transport) -> None:
        self._roster = roster
        self._transport = transport
        self._requests: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="refpool-worker-handler", daemon=True)

    def maintain(self) -> None:
        """Start workers until the count is `processes`, if the pool may still grow."""
        with self._roster.cond:
            handouts = [
                self._roster.add(self._transport.start_worker(self._roster.new_worker_id()))
                for _ in range(self._roster.missing())
            ]
        self._transport.wake()  # the result handler must watch the new workers
        for handout in handouts:  # tasks that waited for a worker, e.g. while one was replaced
            if handout is not None:
                handout.send()

    def worker_gone(self) -> None:
        self._requests.put(_CHANGED)

    def stop(self) -> None:
        self._requests.put(_STOP)

    def _run(self) -> None:
        retry: float | None = None
        while True:
            try:
                request = self._requests.get(timeout=retry)
            except queue.Empty:
                request = _CHANGED
            if request == _STOP:
                return
            try:
                self.maintain()
                retry = None
            except Exception:
                traceback.print_exc()
                retry = RETRY_AFTER_START_FAILURE
