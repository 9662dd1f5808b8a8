"""The worker handler, with a fake transport: starting workers, and a start that fails."""

from __future__ import annotations

import pytest

from refpool.roster import ReadyTask, Roster
from refpool.worker_handler import WorkerHandler

from test_roster import FakeHandle


class FlakyTransport:
    """Starts fake workers; the start numbered `fail_at` raises, as when fds run out."""

    def __init__(self, fail_at: int) -> None:
        self.fail_at = fail_at
        self.started: list[FakeHandle] = []
        self.woken = 0

    def start_worker(self, worker_id: int) -> FakeHandle:
        if len(self.started) + 1 == self.fail_at:
            self.fail_at = 0
            raise OSError(24, "Too many open files")
        handle = FakeHandle(worker_id)
        self.started.append(handle)
        return handle

    def wake(self) -> None:
        self.woken += 1


def test_a_failed_start_still_sends_the_workers_started_before_it_their_tasks() -> None:
    """Checks WORK-8: no task is left recorded as held and never written."""
    roster = Roster(3, None, 2)
    roster.ready.extend(ReadyTask((0, i), f"wire{i}", 1) for i in range(3))
    transport = FlakyTransport(fail_at=2)
    handler = WorkerHandler(roster, transport)  # type: ignore[arg-type]
    with pytest.raises(OSError, match="Too many open files"):
        handler.maintain()
    [first] = transport.started
    assert [number for number, _ in first.sent] == [1, 2]  # type: ignore[misc]
    assert list(roster.workers[first.worker_id].held) == [(0, 0), (0, 1)]
    assert [t.key for t in roster.ready] == [(0, 2)] and transport.woken == 1
    handler.maintain()  # the retry starts the rest, which take what waits (or what is not started)
    assert len(transport.started) == 3 and not roster.ready
    held = [key for record in roster.workers.values() for key in record.held]
    assert sorted(held) == [(0, 0), (0, 1), (0, 2)]
