"""The roster, pure: who holds which task, flow control, the worker count."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from refpool.roster import Roster, TaskKey, WorkerRecord


class FakeHandle:
    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id
        self.pid = 1000 + worker_id
        self.sent: list[object] = []

    def send(self, wire: object) -> None:
        self.sent.append(wire)

    def send_shutdown(self) -> None: ...
    def kill(self) -> None: ...
    def join(self) -> None: ...
    def is_alive(self) -> bool:
        return True


def filled(processes: int = 2, maxtasks: int | None = None, depth: int = 2) -> Roster:
    roster = Roster(processes, maxtasks, depth)
    with roster.cond:
        for _ in range(roster.missing()):
            roster.add(FakeHandle(roster.new_worker_id()))
    return roster


def test_missing_counts_up_to_processes() -> None:
    """Checks WORK-1."""
    roster = Roster(3, None, 2)
    with roster.cond:
        assert roster.missing() == 3
        roster.add(FakeHandle(roster.new_worker_id()))
        assert roster.missing() == 2


def offered(roster: Roster, key: TaskKey) -> WorkerRecord:
    """Offer a task that must go to a worker at once; write it, as the task handler does."""
    handout = roster.offer(key, f"wire{key}")
    assert handout is not None, f"{key} was queued, not handed out"
    handout.send()
    return handout.record


def in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(call()))
    thread.start()
    return thread, got


def test_tasks_go_to_the_least_busy_worker_and_are_recorded() -> None:
    """Checks WORK-3."""
    roster = filled()
    first = offered(roster, (0, 0))
    second = offered(roster, (0, 1))
    assert first is not second
    assert list(first.held) == [(0, 0)] and list(second.held) == [(0, 1)]
    assert first.handle.sent == ["wire(0, 0)"]  # type: ignore[attr-defined]


def test_a_task_waits_in_ready_until_a_worker_frees_and_goes_to_it() -> None:
    """Checks WORK-5: the outcome that frees a worker hands it the next ready task."""
    roster = filled(processes=1, depth=1)
    worker = offered(roster, (0, 0))
    assert roster.offer((0, 1), "wire1") is None  # the only worker is busy
    assert list(roster.ready) == [((0, 1), "wire1")]
    handout = roster.settle(1, (0, 0), True)
    assert handout is not None and handout.record is worker and handout.wire == "wire1"
    assert list(worker.held) == [(0, 1)] and not roster.ready
    handout.send()
    assert roster.settle(1, (0, 1), True) is None  # nothing is ready: the worker idles


def test_offer_waits_while_ready_is_full() -> None:
    roster = filled(processes=1, depth=1)
    offered(roster, (0, 0))
    assert roster.offer((0, 1), "wire1") is None
    waiter, got = in_thread(lambda: roster.offer((0, 2), "wire2"))
    waiter.join(0.2)
    assert waiter.is_alive() and got == []  # `ready` holds one task per worker: it must wait
    handout = roster.settle(1, (0, 0), True)  # takes (0, 1) from `ready`: room again
    assert handout is not None
    waiter.join(0.2)
    assert waiter.is_alive()  # woken only once (0, 1) is written, so it does not delay that
    handout.send()
    waiter.join(5)
    assert not waiter.is_alive() and got == [None]
    assert [key for key, _ in roster.ready] == [(0, 2)]


def test_a_task_handler_waiting_for_room_is_woken_once_ready_is_half_empty() -> None:
    """Not once per task: each wake takes the GIL from the result handler (benchmarks, case 3)."""
    roster = filled(processes=1, depth=1)
    offered(roster, (0, 0))
    for i in range(1, 5):
        assert roster.offer((0, i), f"wire{i}", ahead=4) is None
    waiter, got = in_thread(lambda: roster.offer((0, 5), "wire5", ahead=4))
    waiter.join(0.2)
    assert waiter.is_alive()  # `ready` is full: it waits
    key = (0, 0)
    for expect_room in (False, True):  # 4 -> 3 tasks waiting: no wake; 3 -> 2: wake
        handout = roster.settle(1, key, True)
        assert handout is not None and (handout.room is not None) == expect_room
        handout.send()
        key = next(iter(handout.record.held))
    waiter.join(5)
    assert not waiter.is_alive() and got == [None]
    assert [k for k, _ in roster.ready] == [(0, 3), (0, 4), (0, 5)]


def test_offer_gives_up_when_terminating() -> None:
    roster = filled(processes=1, depth=1)
    offered(roster, (0, 0))
    roster.offer((0, 1), "wire1")
    waiter, got = in_thread(lambda: roster.offer((0, 2), "wire2"))
    roster.terminate()
    waiter.join(5)
    assert got == [None]


def test_a_new_worker_takes_a_ready_task() -> None:
    """Checks WORK-5 after a worker is lost: its replacement takes the waiting task."""
    roster = filled(processes=1, depth=1)
    offered(roster, (0, 0))
    roster.offer((0, 1), "wire1")
    roster.remove(1, -9)
    with roster.cond:
        handout = roster.add(FakeHandle(roster.new_worker_id()))
    assert handout is not None and list(handout.record.held) == [(0, 1)]


def test_an_exited_worker_is_handed_no_task_for_its_last_outcome() -> None:
    """Its last outcomes are read before it is removed (LOST-1); they must not free it."""
    roster = filled(processes=1, depth=1)
    offered(roster, (0, 0))
    roster.offer((0, 1), "wire1")
    roster.exited(1)
    assert roster.settle(1, (0, 0), True) is None
    assert [key for key, _ in roster.ready] == [(0, 1)]


def test_a_gone_worker_hands_back_exactly_what_it_held() -> None:
    """Checks LOST-1, WORK-3."""
    roster = filled()
    for i in range(4):
        offered(roster, (7, i))
    roster.settle(1, (7, 0), True)
    gone = roster.remove(1, 0)
    assert gone is not None
    assert sorted(gone.held) == [(7, 2)]
    assert 1 not in roster.workers


def test_a_worker_is_handed_at_most_maxtasks() -> None:
    """Checks WORK-3."""
    roster = filled(processes=1, maxtasks=2, depth=5)
    offered(roster, (0, 0))
    offered(roster, (0, 1))
    assert roster.offer((0, 2), "wire2") is None  # waits for the replacement
    assert [key for key, _ in roster.ready] == [(0, 2)]


def test_a_sentinel_waits_for_the_task_being_written_to_its_worker() -> None:
    """Checks SHUT-1: the worker's `writing` lock, taken when the task was assigned."""
    roster = filled(processes=1, depth=1)
    handout = roster.offer((0, 0), "wire0")
    assert handout is not None
    [record] = roster.begin_shutdown()
    assert not record.writing.acquire(blocking=False)  # the sentinel would have to wait
    handout.send()
    assert record.writing.acquire(blocking=False)


def shutdown_behind_a_ready_task() -> tuple[Roster, threading.Thread, list[object]]:
    """One worker busy with (0, 0), (0, 1) waiting in `ready`, and begin_shutdown waiting for it."""
    roster = filled(processes=1, depth=1)
    offered(roster, (0, 0))
    roster.offer((0, 1), "wire1")
    waiter, got = in_thread(roster.begin_shutdown)
    waiter.join(0.2)
    assert waiter.is_alive() and not roster.shutdown_begun  # `ready` is not empty yet
    return roster, waiter, got


def test_shutdown_begins_only_once_ready_is_empty() -> None:
    """Checks SHUT-1."""
    roster, waiter, got = shutdown_behind_a_ready_task()
    handout = roster.settle(1, (0, 0), True)
    assert handout is not None
    handout.send()
    waiter.join(5)
    assert not waiter.is_alive() and roster.shutdown_begun
    assert [[r.handle.worker_id for r in need] for need in got] == [[1]]  # type: ignore[attr-defined]


def test_sentinels_go_to_every_worker_but_the_retiring_ones() -> None:
    """Checks SHUT-2."""
    roster = filled(processes=2, maxtasks=1)
    offered(roster, (0, 0))
    need = roster.begin_shutdown()
    assert [r.handle.worker_id for r in need] == [2]
    assert roster.begin_shutdown() == []  # never a second sentinel to the same worker
    with roster.cond:
        assert roster.missing() == 0


def test_no_shutdown_begins_once_terminate_has_come_first() -> None:
    """Checks SHUT-5: terminate() while the last tasks wait for a worker; no sentinel plan is made."""
    roster, waiter, got = shutdown_behind_a_ready_task()
    roster.terminate()
    waiter.join(5)
    assert got == [[]] and not roster.shutdown_begun


def test_no_worker_is_added_after_shutdown_has_begun() -> None:
    """Checks WORK-2."""
    roster = filled(processes=2)
    roster.remove(1, 0)
    roster.begin_shutdown()
    with roster.cond:
        assert roster.missing() == 0
        with pytest.raises(AssertionError, match="after shutdown"):
            roster.add(FakeHandle(roster.new_worker_id()))


def test_finished_once_shutdown_has_begun_and_every_worker_is_gone() -> None:
    roster = filled(processes=2)
    roster.begin_shutdown()
    assert not roster.finished()
    roster.remove(1, 0)
    roster.remove(2, 0)
    assert roster.finished()
