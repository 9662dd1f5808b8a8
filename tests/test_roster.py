"""The roster, pure: who holds which task, flow control, take-back, sentinels, the worker count."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest

from refpool.messages import SHUTDOWN, TaskKey
from refpool.roster import READY_LIMIT, Handout, Outgoing, ReadyTask, Roster, WorkerRecord


class FakeClaims:
    """A claim word whose worker has started the tasks numbered up to `claimed`, the last of
    them at `claimed_at` (nanoseconds, as time.monotonic_ns() counts)."""

    def __init__(self) -> None:
        self.claimed = 0
        self.claimed_at = 0
        self.revoked = 0

    def take_back(self, last_sent: int) -> int:
        self.revoked = max(self.revoked, last_sent)
        return self.claimed

    def started(self) -> tuple[int, int]:
        return self.claimed, self.claimed_at


class FakeHandle:
    """A worker handle that records what it is sent and whether it was stopped."""

    in_process = False

    def __init__(self, worker_id: int, budget: int | None = None) -> None:
        self.worker_id = worker_id
        self.pid = 1000 + worker_id
        self.claims = FakeClaims()
        self.inbox_budget = budget
        self.sent: list[Outgoing] = []
        self.stopped = False

    def send(self, items: Sequence[Outgoing]) -> None:
        self.sent.extend(items)

    def stop_now(self) -> None:
        self.stopped = True

    def kill(self) -> None: ...
    def join(self) -> None: ...
    def is_alive(self) -> bool:
        return not self.stopped


def task(job: int, position: int, size: int = 10) -> ReadyTask:
    return ReadyTask((job, position), f"wire{(job, position)}", size)


def filled(
    processes: int = 2, maxtasks: int | None = None, depth: int = 2, budget: int | None = None
) -> Roster:
    roster = Roster(processes, maxtasks, depth)
    with roster.cond:
        for _ in range(roster.missing()):
            roster.add(FakeHandle(roster.new_worker_id(), budget))
        handout = roster.serve_all()
    handout.send()  # outside cond, as the worker handler does
    return roster


def record(roster: Roster, worker_id: int) -> WorkerRecord:
    return roster.workers[worker_id]


def sent(roster: Roster, worker_id: int) -> list[Outgoing]:
    handle = record(roster, worker_id).handle
    assert isinstance(handle, FakeHandle)
    return handle.sent


def offer(roster: Roster, *tasks: ReadyTask) -> None:
    """Offer tasks that must all be taken (handed out or queued), and write what was handed out."""
    handout, taken = roster.offer(list(tasks))
    assert taken == len(tasks)
    handout.send()


def held(roster: Roster, worker_id: int) -> list[TaskKey]:
    return list(record(roster, worker_id).held)


def settle(roster: Roster, worker_id: int, key: TaskKey) -> Handout:
    handout = roster.settle(worker_id, key, True)
    handout.send()
    return handout


def in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    got: list[object] = []
    thread = threading.Thread(target=lambda: got.append(call()))
    thread.start()
    return thread, got


# --- the worker count (WORK-1, WORK-2) ------------------------------------------------


def test_missing_counts_up_to_processes() -> None:
    """Checks WORK-1."""
    roster = Roster(3, None, 2)
    with roster.cond:
        assert roster.missing() == 3
        roster.add(FakeHandle(roster.new_worker_id()))
        assert roster.missing() == 2


def test_once_closing_workers_start_only_for_tasks_that_wait() -> None:
    """Checks WORK-2: a worker died with two tasks behind its oldest; one replacement per task."""
    roster = filled(processes=3, depth=3)
    offer(roster, *(task(0, i) for i in range(9)))  # three each
    roster.begin_closing().send()
    roster.reap(1, -9)[2].send()  # (0, 0) is lost, (0, 3) and (0, 6) wait: nobody has room
    assert [t.key for t in roster.ready] == [(0, 3), (0, 6)]
    with roster.cond:
        assert roster.missing() == 1  # processes - live, and no more than the tasks waiting
    settle(roster, 2, (0, 1))
    assert [t.key for t in roster.ready] == [(0, 6)]  # worker 2 took (0, 3)
    roster.reap(2, -9)[2].send()
    with roster.cond:
        assert roster.missing() == 2  # (0, 6) and worker 2's (0, 4), (0, 7), behind (0, 3)


def test_no_worker_starts_once_closing_with_nothing_waiting() -> None:
    """Checks WORK-2."""
    roster = filled(processes=2)
    roster.begin_closing().send()
    roster.reap(1, 0)
    with roster.cond:
        assert roster.missing() == 0
        with pytest.raises(AssertionError, match="beyond the count"):
            roster.add(FakeHandle(roster.new_worker_id()))
            roster.add(FakeHandle(roster.new_worker_id()))


def test_finished_once_closing_and_every_worker_is_gone() -> None:
    roster = filled(processes=2)
    roster.begin_closing().send()
    assert not roster.finished()
    roster.reap(1, 0)
    roster.reap(2, 0)
    assert roster.finished()


# --- holding tasks (WORK-3) -----------------------------------------------------------


def test_tasks_go_to_the_least_busy_worker_numbered_in_order() -> None:
    """Checks WORK-3: recorded before they are written, numbered 1, 2, ... at each worker."""
    roster = filled(depth=2)
    offer(roster, task(0, 0), task(0, 1), task(0, 2), task(0, 3))
    assert held(roster, 1) == [(0, 0), (0, 2)] and held(roster, 2) == [(0, 1), (0, 3)]
    assert sent(roster, 1) == [(1, "wire(0, 0)"), (2, "wire(0, 2)")]
    assert [h.number for h in record(roster, 2).held.values()] == [1, 2]


def test_a_worker_holds_at_most_depth_tasks_and_the_rest_wait_in_ready() -> None:
    """Checks WORK-3 and WORK-5: a task waits in ready only while no worker can take it."""
    roster = filled(processes=1, depth=2)
    offer(roster, task(0, 0), task(0, 1), task(0, 2))
    assert held(roster, 1) == [(0, 0), (0, 1)]
    assert [t.key for t in roster.ready] == [(0, 2)]
    settle(roster, 1, (0, 0))  # the outcome that frees a slot brings the next ready task
    assert held(roster, 1) == [(0, 1), (0, 2)] and not roster.ready
    assert sent(roster, 1)[-1] == (3, "wire(0, 2)")


def test_a_worker_is_handed_at_most_maxtasks() -> None:
    """Checks WORK-3."""
    roster = filled(processes=1, maxtasks=2, depth=5)
    offer(roster, task(0, 0), task(0, 1), task(0, 2))
    assert held(roster, 1) == [(0, 0), (0, 1)]
    assert [t.key for t in roster.ready] == [(0, 2)]  # waits for the replacement


def test_an_exited_worker_is_handed_no_task_for_its_last_outcomes() -> None:
    """Its last outcomes are read before it is removed (LOST-1); they must not free it."""
    roster = filled(processes=1, depth=1)
    offer(roster, task(0, 0), task(0, 1))
    roster.exited(1)
    assert settle(roster, 1, (0, 0)).records == ()
    assert [t.key for t in roster.ready] == [(0, 1)]


# --- flow control ---------------------------------------------------------------------


def test_offer_stops_at_the_ready_limit() -> None:
    roster = filled(processes=1, depth=1)
    tasks = [task(0, i) for i in range(READY_LIMIT + 5)]
    _, taken = roster.offer(tasks)
    assert taken == READY_LIMIT + 1  # one handed out, READY_LIMIT queued
    assert len(roster.ready) == READY_LIMIT


def test_the_task_handler_waits_for_room_until_ready_is_half_empty_and_written() -> None:
    """Not once per task: each wake takes the GIL from the result handler (benchmarks, case 3)."""
    roster = filled(processes=1, depth=1)
    roster.offer([task(0, i) for i in range(READY_LIMIT + 1)])[0].send()
    waiter, got = in_thread(roster.wait_for_room)
    waiter.join(0.2)
    assert waiter.is_alive()  # `ready` is full
    key = (0, 0)
    for _ in range(READY_LIMIT // 2):
        handout = roster.settle(1, key, True)
        if len(roster.ready) > READY_LIMIT // 2:
            assert handout.room is None  # not yet
        key = next(iter(record(roster, 1).held))
        handout.send()
    assert handout.room is not None  # half empty: wake it, once the task is written
    waiter.join(5)
    assert not waiter.is_alive() and got == [True]


def test_waiting_for_room_gives_up_when_terminating() -> None:
    roster = filled(processes=1, depth=1)
    roster.offer([task(0, i) for i in range(READY_LIMIT + 1)])
    waiter, got = in_thread(roster.wait_for_room)
    roster.terminate()
    waiter.join(5)
    assert got == [False]


# --- take-back (WORK-5, WORK-6) -------------------------------------------------------


def busy_and_idle(depth: int = 4) -> Roster:
    """Worker 1 runs (0, 0) with (0, 2), (0, 4) behind it; worker 2 runs (0, 1), (0, 3) and
    is about to be idle: nothing waits in ready."""
    roster = filled(depth=depth)
    offer(roster, *(task(0, i) for i in range(5)))
    record(roster, 1).handle.claims.claimed = 1  # type: ignore[attr-defined]
    settle(roster, 2, (0, 1))
    return roster


def test_an_idle_worker_is_given_the_tasks_a_busy_one_has_not_started() -> None:
    """Checks WORK-5, WORK-6."""
    roster = busy_and_idle()
    settle(roster, 2, (0, 3))  # worker 2 is idle: worker 1's unstarted tasks come to it
    assert held(roster, 1) == [(0, 0)] and held(roster, 2) == [(0, 2), (0, 4)]
    claims = record(roster, 1).handle.claims
    assert claims.revoked == 3  # type: ignore[attr-defined]  # worker 1 skips tasks 2 and 3
    assert sent(roster, 2)[-2:] == [(3, "wire(0, 2)"), (4, "wire(0, 4)")]  # new numbers there
    assert record(roster, 1).handed_out == 1


def test_a_victim_with_a_task_still_running_takes_nothing_new_until_it_holds_nothing() -> None:
    """Checks WORK-5: nothing queues again behind the task that made others wait (stalled)."""
    roster = busy_and_idle()
    settle(roster, 2, (0, 3))
    offer(roster, task(1, 0), task(1, 1), task(1, 2))
    assert held(roster, 1) == [(0, 0)]  # stalled: the new tasks went to worker 2, or wait
    assert held(roster, 2) == [(0, 2), (0, 4), (1, 0), (1, 1)] and [t.key for t in roster.ready] == [(1, 2)]
    settle(roster, 1, (0, 0))  # it finished: it takes work again
    assert held(roster, 1) == [(1, 2)]


def test_a_take_back_that_finds_nothing_leaves_a_stalled_worker_stalled() -> None:
    """Checks WORK-5, WORK-7: the tasks it gave back may still be unread in its pipe."""
    roster = filled(depth=3)
    offer(roster, *(task(0, i) for i in range(5)))  # 1: 0 2 4, 2: 1 3
    record(roster, 1).handle.claims.claimed = 2  # type: ignore[attr-defined]  # it runs (0, 2)
    settle(roster, 2, (0, 1))
    settle(roster, 2, (0, 3))  # idle: (0, 4) comes back from worker 1, now stalled
    assert held(roster, 1) == [(0, 0), (0, 2)] and record(roster, 1).stalled
    settle(roster, 2, (0, 4))  # idle again: this take-back finds nothing
    assert record(roster, 1).stalled
    offer(roster, task(1, 0), task(1, 1), task(1, 2))
    assert held(roster, 1) == [(0, 0), (0, 2)]


def test_a_take_back_that_finds_every_task_started_takes_nothing() -> None:
    """Checks WORK-6: started tasks stay with their worker; WORK-5 holds, for nothing waits."""
    roster = busy_and_idle()
    record(roster, 1).handle.claims.claimed = 3  # type: ignore[attr-defined]  # it ran (0, 2) already
    settle(roster, 2, (0, 3))
    assert held(roster, 1) == [(0, 0), (0, 2), (0, 4)] and held(roster, 2) == []


def test_the_busiest_worker_is_taken_back_from_first() -> None:
    roster = filled(processes=3, depth=4)
    offer(roster, *(task(0, i) for i in range(9)))  # 1: 0 3 6, 2: 1 4 7, 3: 2 5 8
    offer(roster, task(1, 0))  # worker 1 now holds four
    for worker in (1, 2):
        record(roster, worker).handle.claims.claimed = 1  # type: ignore[attr-defined]
    for key in ((0, 2), (0, 5), (0, 8)):
        settle(roster, 3, key)
    assert held(roster, 1) == [(0, 0)] and held(roster, 2) == [(0, 1), (0, 4), (0, 7)]
    assert held(roster, 3) == [(0, 3), (0, 6), (1, 0)]


# --- the inbox budget (WORK-7) --------------------------------------------------------


def test_a_busy_worker_takes_a_task_only_if_all_it_holds_fits_its_budget() -> None:
    """Checks WORK-7."""
    roster = filled(processes=1, depth=4, budget=100)
    offer(roster, task(0, 0, size=60), task(0, 1, size=30), task(0, 2, size=30))
    assert held(roster, 1) == [(0, 0), (0, 1)]  # 60 + 30 fit, a third would not
    assert [t.key for t in roster.ready] == [(0, 2)]


def test_tasks_taken_back_count_against_the_budget_until_the_worker_has_read_past_them() -> None:
    """Checks WORK-7: a worker that had started nothing may not have read them yet, and skips
    them only when it does; tasks written to it meanwhile must still fit its pipe."""
    roster = filled(depth=4, budget=100)
    offer(roster, *(task(0, i, size=30) for i in range(4)))  # 1: 0 2, 2: 1 3; 1 has started nothing
    settle(roster, 2, (0, 1))
    settle(roster, 2, (0, 3))  # 2 is idle: both of 1's tasks come back, and go out again
    assert record(roster, 1).revoked_bytes == 60
    assert held(roster, 1) == [(0, 0)] and held(roster, 2) == [(0, 2)]
    offer(roster, task(1, 0, size=30))  # 30 + 60 unread + 30 > 100 for worker 1
    assert held(roster, 2) == [(0, 2), (1, 0)]
    settle(roster, 1, (0, 0))  # numbered after what was taken back: it has read past it
    assert record(roster, 1).revoked_bytes == 0


def test_a_task_too_big_for_the_budget_goes_alone_to_an_idle_worker_and_is_not_kept() -> None:
    """Checks WORK-7: it is its worker's only task, so never taken back, and fails if it dies."""
    roster = filled(processes=1, depth=4, budget=100)
    offer(roster, task(0, 0, size=500), task(0, 1, size=1))
    assert held(roster, 1) == [(0, 0)] and [t.key for t in roster.ready] == [(0, 1)]
    assert record(roster, 1).held[(0, 0)].encoded is None
    _, lost, _ = roster.reap(1, -9)
    assert lost == (0, 0) and [t.key for t in roster.ready] == [(0, 1)]


# --- a worker that dies (LOST-1, LOST-3) ----------------------------------------------


def test_a_dead_workers_oldest_task_is_lost_and_the_ones_behind_it_go_to_others() -> None:
    """Checks LOST-1, LOST-3."""
    roster = filled(depth=3)
    offer(roster, *(task(7, i) for i in range(6)))  # 1: 0 2 4, 2: 1 3 5
    gone, lost, handout = roster.reap(2, -9)
    handout.send()
    assert gone is not None and lost == (7, 1) and 2 not in roster.workers
    assert [t.key for t in roster.ready] == [(7, 3), (7, 5)]  # worker 1 is full: they wait, first
    settle(roster, 1, (7, 0))
    assert held(roster, 1) == [(7, 2), (7, 4), (7, 3)] and [t.key for t in roster.ready] == [(7, 5)]


def test_a_new_worker_takes_the_tasks_that_wait() -> None:
    """Checks WORK-5 after a worker is lost: its replacement takes the waiting tasks."""
    roster = filled(processes=1, depth=2)
    offer(roster, task(0, 0), task(0, 1), task(0, 2))
    roster.reap(1, -9)[2].send()
    assert [t.key for t in roster.ready] == [(0, 1), (0, 2)]
    with roster.cond:
        roster.add(FakeHandle(roster.new_worker_id()))
        handout = roster.serve_all()
    handout.send()
    assert held(roster, 2) == [(0, 1), (0, 2)]


# --- sentinels (SHUT-1, SHUT-2) -------------------------------------------------------


def test_idle_workers_get_their_sentinel_when_closing_busy_ones_when_idle() -> None:
    """Checks SHUT-1, SHUT-2."""
    roster = filled(depth=2)
    offer(roster, task(0, 0))
    roster.begin_closing().send()
    assert sent(roster, 2) == [SHUTDOWN] and sent(roster, 1) == [(1, "wire(0, 0)")]
    settle(roster, 1, (0, 0))
    assert sent(roster, 1)[-1] is SHUTDOWN
    with roster.cond:
        handout = roster.serve_all()
    handout.send()
    assert [item for item in sent(roster, 1) if item is SHUTDOWN] == [SHUTDOWN]  # never two


def test_a_sentinel_queues_behind_the_tasks_queued_before_it() -> None:
    """Checks SHUT-1: one FIFO per worker, written by one thread at a time."""
    roster = filled(processes=1, depth=2)
    handout, _ = roster.offer([task(0, 0)])
    settle(roster, 1, (0, 0))  # before the task was even written: the sentinel waits behind it
    roster.begin_closing()
    handout.send()
    assert sent(roster, 1) == [(1, "wire(0, 0)"), SHUTDOWN]


def test_tasks_still_waiting_are_handed_out_after_closing_before_any_sentinel() -> None:
    """Checks SHUT-1: closing sends no sentinel to a worker while tasks wait."""
    roster = filled(processes=1, depth=1)
    offer(roster, task(0, 0), task(0, 1))
    roster.begin_closing().send()
    assert SHUTDOWN not in sent(roster, 1)
    settle(roster, 1, (0, 0))
    assert SHUTDOWN not in sent(roster, 1)
    settle(roster, 1, (0, 1))
    assert sent(roster, 1)[-1] is SHUTDOWN


def test_a_worker_handed_its_maxtasks_gets_no_sentinel() -> None:
    """Checks SHUT-2: it exits by itself."""
    roster = filled(processes=2, maxtasks=1)
    offer(roster, task(0, 0))
    settle(roster, 1, (0, 0))
    roster.begin_closing().send()
    assert SHUTDOWN not in sent(roster, 1) and sent(roster, 2) == [SHUTDOWN]


def test_no_sentinel_once_terminate_has_come_first() -> None:
    """Checks SHUT-5: terminate() stops every worker itself."""
    roster = filled(processes=1)
    roster.terminate()
    roster.begin_closing().send()
    assert sent(roster, 1) == [] and not roster.closing
