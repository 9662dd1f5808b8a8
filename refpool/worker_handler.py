"""The worker handler: keeps the number of workers exact.

It starts the first workers (from the constructor, before any thread runs, so
that fork happens in a single-threaded parent) and, each time the result
handler reports a worker reaped, starts replacements. `Roster.missing()` says how
many: none once the pool is terminating, and once it is closing, only as many
as there are tasks waiting for a worker (WORK-2). Starting happens under the
roster's lock, and the new workers are served (given ready tasks, or tasks
taken back from a busy worker) in the same step.

Stops when: told to, by the result handler once nothing is left to run, or by
terminate().
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from typing import Final

from .roster import Roster, initializer_pause_ms
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
        failure: Exception | None = None
        with self._roster.cond:
            try:
                for _ in range(self._roster.missing()):
                    self._roster.add(self._transport.start_worker(self._roster.new_worker_id()))
            except Exception as error:  # no fds, no memory: the caller retries
                failure = error
            # Also when a start failed: the workers started before it are served.
            handout = self._roster.serve_all()
        self._transport.wake()  # the result handler must watch the new workers
        handout.send()  # tasks that waited for a worker, e.g. while one was replaced
        if failure is not None:
            raise failure

    def _pause_after_initializer_failures(self) -> bool:
        """Wait before starting workers, after initializers failed (LOST-4); False if told
        to stop meanwhile. Requests that come during the pause are answered by its end."""
        deadline = time.monotonic() + initializer_pause_ms(self._roster.initializer_failures) / 1000
        while (left := deadline - time.monotonic()) > 0:
            try:
                if self._requests.get(timeout=left) == _STOP:
                    return False
            except queue.Empty:
                break
        return True

    def worker_reaped(self) -> None:
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
            if request == _STOP or not self._pause_after_initializer_failures():
                return
            try:
                self.maintain()
                retry = None
            except Exception:
                traceback.print_exc()
                retry = RETRY_AFTER_START_FAILURE
