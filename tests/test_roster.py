"""The roster, pure: who holds which task, flow control, the worker count."""

from __future__ import annotations

import threading

import pytest

from refpool.roster import Roster


class FakeHandle:
    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id
        self.pid = 1000 + worker_id

    def send(self, wire: object) -> None: ...
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


def test_tasks_go_to_the_least_busy_worker_and_are_recorded() -> None:
    """Checks WORK-3."""
    roster = filled()
    first = roster.assign((0, 0))
    second = roster.assign((0, 1))
    assert first is not None and second is not None
    assert first is not second
    assert list(first.held) == [(0, 0)] and list(second.held) == [(0, 1)]


def test_a_gone_worker_hands_back_exactly_what_it_held() -> None:
    """Checks LOST-1, WORK-3."""
    roster = filled()
    records = [roster.assign((7, i)) for i in range(4)]
    assert all(r is not None for r in records)
    roster.settle(1, (7, 0), True)
    gone = roster.remove(1, 0)
    assert gone is not None
    assert sorted(gone.held) == [(7, 2)]
    assert 1 not in roster.workers


def test_assign_waits_while_every_worker_is_full() -> None:
    roster = filled(processes=1, depth=1)
    assert roster.assign((0, 0)) is not None
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(roster.assign((0, 1))))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and got == []  # full: it must wait
    roster.settle(1, (0, 0), True)
    waiter.join(5)
    assert not waiter.is_alive() and got and got[0] is not None


def test_assign_gives_up_when_terminating() -> None:
    roster = filled(processes=1, depth=1)
    roster.assign((0, 0))
    result: list[object] = ["unset"]
    waiter = threading.Thread(target=lambda: result.__setitem__(0, roster.assign((0, 1))))
    waiter.start()
    roster.terminate()
    waiter.join(5)
    assert result == [None]


def test_a_worker_is_handed_at_most_maxtasks() -> None:
    """Checks WORK-3."""
    roster = filled(processes=1, maxtasks=2, depth=5)
    assert roster.assign((0, 0)) is not None
    assert roster.assign((0, 1)) is not None
    roster.terminate()  # else the third assign would wait for a replacement
    assert roster.assign((0, 2)) is None


def test_sentinels_go_to_every_worker_but_the_retiring_ones() -> None:
    """Checks SHUT-2."""
    roster = filled(processes=2, maxtasks=1)
    retiring = roster.assign((0, 0))
    need = roster.begin_shutdown()
    assert retiring is not None and [r.handle.worker_id for r in need] == [2]
    assert roster.begin_shutdown() == []  # never a second sentinel to the same worker
    with roster.cond:
        assert roster.missing() == 0


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
