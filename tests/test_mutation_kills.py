"""Tests that kill mutants which survived every other test in cosmic-ray's run of the core
(tests/mutation/README.md); each names the mutant it kills."""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import pathlib
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from queue import Empty
from typing import Any

import pytest

import refpool
from refpool import errors, transport, wire
from refpool.chunking import check_chunksize, chunk_bounds, count_chunks
from refpool.claims import SharedClaimWord, ThreadInbox
from refpool.errors import JobCancelledError, TaskTimeoutError, WorkerLostError
from refpool.jobs import ApplyResult, IMapIterator, JobCache, checked_timeout
from refpool.lifecycle import TRANSITIONS, Lifecycle, PoolEvent, PoolState, PoolStateError, legal_events
from refpool.messages import Call, Outcome, Task, WorkerExited
from refpool.observer import JobCancelled, Observation, StateChanged
from refpool.result_handler import ResultHandler
from refpool.roster import (
    FIRST_INITIALIZER_PAUSE_MS,
    NOTHING,
    Outgoing,
    ReadyTask,
    Roster,
    TaskKey,
    WorkerRecord,
    initializer_pause_ms,
)
from refpool.task_handler import TERMINATED, QueueMark, TaskBatch, TaskHandler
from refpool.timekeeper import Timekeeper
from refpool.worker import ProcessPort, watch_pool, worker_loop
from refpool.worker_handler import WorkerHandler

from pool_helpers import StopsThenGoesOn, sleep_for, square, start_then_wait_for_file
from test_roster import FakeHandle

S, E = PoolState, PoolEvent

# --- lifecycle.legal_events: only CrossHair called it -----------------------------------------


def test_legal_events_are_what_the_stdlib_pool_allows_in_each_state() -> None:
    """Kills `s == state` -> `s != state`, `s <= state`, ... in legal_events (the ordering ones
    raise TypeError on enums; `!=` returns every other state's events)."""
    assert legal_events(S.INIT) == {E.STARTED, E.TERMINATE}
    assert legal_events(S.RUN) == {E.SUBMIT, E.CLOSE, E.TERMINATE}
    assert legal_events(S.CLOSE) == {E.CLOSE, E.JOIN, E.TERMINATE}
    assert legal_events(S.TERMINATE) == {E.CLOSE, E.JOIN, E.TERMINATE}


@pytest.mark.parametrize(("state", "event"), list(itertools.product(PoolState, PoolEvent)))
def test_an_event_is_legal_exactly_when_firing_it_succeeds(state: PoolState, event: PoolEvent) -> None:
    """legal_events is what the docs and the models read: it must agree with Lifecycle.fire."""
    lifecycle = Lifecycle()
    lifecycle._state = state  # only tests reach in: no public way to every state
    if event in legal_events(state):
        lifecycle.fire(event)
        assert lifecycle.state is TRANSITIONS[(state, event)]
    else:
        with pytest.raises(PoolStateError):
            lifecycle.fire(event)
        assert lifecycle.state is state


# --- chunking: chunk_bounds was checked by CrossHair alone, and a chunksize of 1 by nothing -----


def test_the_chunks_of_a_map_tile_its_input_in_order() -> None:
    """Kills `index * chunksize` -> `index // chunksize` and `start + chunksize` ->
    `start * chunksize` in chunk_bounds."""
    for length in range(13):
        for chunksize in range(1, 5):
            count = count_chunks(length, chunksize)
            chunks = [chunk_bounds(index, chunksize, length) for index in range(count)]
            assert [i for start, stop in chunks for i in range(start, stop)] == list(range(length))


def test_a_chunksize_of_one_or_more_is_accepted() -> None:
    """Kills `chunksize < 1` -> `chunksize <= 1`, `chunksize != 1` and `chunksize < 2` in
    check_chunksize."""
    assert [check_chunksize(n) for n in (1, 2, 7)] == [1, 2, 7]


# --- jobs.JobCache.deliver_here: only thread pools called it ---------------------------------


def test_deliver_here_says_whether_the_result_handler_must_deliver_instead() -> None:
    """A thread worker delivers an outcome itself unless its job has callbacks, which must run
    in the result handler's thread; True means nothing is left to do. Kills `return True` ->
    `return False` at the end of deliver_here (the outcome would be delivered twice)."""
    cache = JobCache()
    plain = ApplyResult(cache, pool=None)
    with_callback = ApplyResult(cache, pool=None, callback=lambda value: None)
    assert cache.deliver_here(plain.job_id, 0, True, 5) is True
    assert plain.get(timeout=0) == 5
    assert cache.deliver_here(with_callback.job_id, 0, True, 6) is False
    assert not with_callback.ready()
    assert cache.deliver_here(plain.job_id, 0, True, 7) is True  # settled: an outcome to ignore


def test_an_imap_job_has_no_callbacks_to_wait_for() -> None:
    """Kills `has_callbacks = False` -> `True` on Job (IMapIterator keeps the class's value):
    every imap outcome of a thread pool would take a detour through the result handler."""
    cache = JobCache()
    results: IMapIterator[int] = IMapIterator(cache, pool=None)
    assert cache.deliver_here(results.job_id, 0, True, 5) is True
    assert results.next(timeout=0) == 5


def test_an_infinite_timeout_waits_as_none_does_however_it_was_made() -> None:
    """Kills `timeout == math.inf` -> `timeout is math.inf` in checked_timeout."""
    assert checked_timeout(float("inf")) is None
    assert checked_timeout(math.inf) is None


def test_an_imap_of_more_than_256_results_ends_with_stop_iteration() -> None:
    """Kills `self._delivered == self._length` -> `is` in IMapIterator._has_next: ints above
    256 are distinct objects, and the caller who asks past the end would wait out its timeout."""
    results: IMapIterator[int] = IMapIterator(JobCache(), pool=None)
    for index in range(300):
        results._set(index, True, index)
    results._set_length(300)
    assert list(itertools.islice(results, 300)) == list(range(300))
    with pytest.raises(StopIteration):
        results.next(timeout=2)


def test_a_caller_waiting_in_next_after_an_earlier_wait_timed_out_is_woken() -> None:
    """Kills `self._waiting -= 1` -> `-= 2` in IMapIterator._next_outcome: the count of
    waiting callers would say nobody waits, and the outcome would wake nobody."""
    results: IMapIterator[int] = IMapIterator(JobCache(), pool=None)
    with pytest.raises(errors.TimeoutError):
        results.next(timeout=0)  # a wait that ended
    got: list[int] = []
    caller = threading.Thread(target=lambda: got.append(results.next(timeout=5)))
    caller.start()
    deadline = time.monotonic() + 5
    # Polling is the only way to see a thread begin to wait; each step is short.
    while not results._cond._waiters and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.001)
    started = time.monotonic()
    results._set(0, True, 42)
    caller.join(timeout=10)
    assert got == [42]
    assert time.monotonic() - started < 4  # woken by the outcome, not by its timeout


def test_a_cancelled_job_with_an_error_callback_settles_where_callbacks_run() -> None:
    """A job with an error_callback is settled by the callbacks' thread (here, a list of what
    that thread is asked to run), one without is settled at once. Kills `is None` ->
    `is not None` in ApplyResult.cancel."""
    cache = JobCache()
    asked: list[Callable[[], None]] = []
    cache.in_callback_thread = asked.append
    errors: list[BaseException] = []
    with_callback = ApplyResult(cache, pool=None, error_callback=errors.append)
    plain = ApplyResult(cache, pool=None)
    assert with_callback.cancel() is True
    assert not with_callback.ready() and errors == []
    asked.pop()()  # the callbacks' thread runs it
    assert with_callback.ready() and isinstance(errors[0], JobCancelledError)
    assert plain.cancel() is True
    assert plain.ready() and asked == []
    with pytest.raises(JobCancelledError):
        plain.get(timeout=0)


# --- claims.ThreadInbox.wait ------------------------------------------------------------------


def test_a_thread_worker_with_a_task_in_its_inbox_does_not_sleep() -> None:
    """A task put between the worker's last look and its wait (its ring is dropped with the
    stale ones) must not leave the worker asleep. Kills `if not self._items and not stopped()`
    -> `if self._items and not stopped()` in ThreadInbox.wait."""
    inbox = ThreadInbox()
    inbox.put([(1, "task")])
    waiter = threading.Thread(target=inbox.wait, args=(lambda: False,), daemon=True)
    waiter.start()
    try:
        waiter.join(timeout=5)
        assert not waiter.is_alive()
    finally:
        inbox.put([])  # rings, so that a waiter that did sleep ends


def test_a_take_back_from_a_thread_inbox_says_the_last_task_the_worker_took() -> None:
    """The parent takes back what the worker has not taken, and learns the number of the last
    task it did take (the tasks above it are the parent's again). Kills `oldest_number - 1` ->
    `oldest_number >> 1` in ThreadInbox.take_back (the worker's tasks 2 and 3 would run twice)."""
    inbox = ThreadInbox()
    inbox.put([(number, f"task {number}") for number in range(1, 7)])
    assert [inbox.take() for _ in range(3)] == [(1, "task 1"), (2, "task 2"), (3, "task 3")]
    assert inbox.take_back(6) == 3
    assert inbox.take() is None
    assert inbox.take_back(6) == 6  # nothing left: it has taken everything sent


def test_a_claim_words_revoked_counter_never_goes_back() -> None:
    """ "Both counters only grow" (claims.py): a take-back that has seen fewer tasks sent than
    an earlier one gives back nothing the earlier one took. Kills `last_sent > revoked` ->
    `last_sent != revoked` in SharedClaimWord.take_back."""
    word = SharedClaimWord()
    try:
        assert word.take_back(5) == 0
        assert word.take_back(3) == 0
        assert word.claim(4) is False  # still the parent's
        assert word.claim(6) is True
        assert word.started()[0] == 6
    finally:
        word.close()


# --- result_handler._handle: a dead worker is marked before its last outcomes are settled ------


class OneWorkerHandle:
    """A worker handle that records what it is sent; the process behind it has exited."""

    in_process = False
    inbox_budget = None

    def __init__(self, worker_id: int) -> None:
        self.worker_id = worker_id
        self.pid = 4000 + worker_id
        self.sent: list[Outgoing] = []

    @property
    def claims(self) -> Any:
        raise AssertionError("nothing is taken back from a worker that is gone")

    def send(self, items: Sequence[Outgoing]) -> None:
        self.sent.extend(items)

    def kill(self) -> None: ...
    def stop_now(self) -> None: ...
    def join(self) -> None: ...
    def is_alive(self) -> bool:
        return False


class PlainTransport:
    """Payloads travel as they are; nothing to wake or close."""

    def decode(self, payload: Any) -> Any:
        return payload

    def wake(self) -> None: ...
    def release(self, handle: Any) -> None: ...


class RecordingCache(JobCache):
    def __init__(self) -> None:
        super().__init__()
        self.delivered: list[tuple[TaskKey, bool, Any]] = []

    def deliver(self, job_id: int, index: int, success: bool, value: Any) -> None:
        self.delivered.append(((job_id, index), success, value))


def test_a_task_ready_when_a_worker_dies_is_not_failed_with_its_last_outcome() -> None:
    """A worker's last outcome and its death are read in one batch, while a task waits in
    `ready`. Settling the outcome must not hand that task to the dead worker: it would then
    be the oldest task the worker held, and fail with WorkerLostError though it never ran.
    Kills the removal of `self._roster.exited(gone.worker_id)` in ResultHandler._handle."""
    roster = Roster(1, None, 1)  # one worker, one task in flight: the second task waits
    with roster.cond:
        handle = OneWorkerHandle(roster.new_worker_id())
        roster.add(handle)
    roster.offer([ReadyTask((0, 0), "wire(0, 0)", 10), ReadyTask((0, 1), "wire(0, 1)", 10)])[0].send()
    assert [task.key for task in roster.ready] == [(0, 1)]
    cache = RecordingCache()
    handler = ResultHandler(
        roster, PlainTransport(), cache, worker_reaped=lambda: None, finished=lambda: None
    )  # type: ignore[arg-type]

    handler._handle([(handle.worker_id, Outcome(0, 0, True, 0, None)), WorkerExited(handle.worker_id, 0)])

    assert cache.delivered == [((0, 0), True, 0)]  # and no WorkerLostError for (0, 1)
    assert not any(isinstance(value, WorkerLostError) for _, _, value in cache.delivered)
    assert [task.key for task in roster.ready] == [(0, 1)]  # it waits for the replacement
    assert handle.sent == [(1, "wire(0, 0)")]  # nothing written to it after its one task


def test_only_the_task_a_worker_was_stopped_for_fails_with_task_timeout_error() -> None:
    """Kills `record.timed_out[0] == lost` -> `> lost` in ResultHandler._lost_error."""
    record = WorkerRecord(FakeHandle(1))
    record.timed_out = ((0, 1), 2.5)
    timed_out = ResultHandler._lost_error(record, (0, 1), -9)
    assert isinstance(timed_out, TaskTimeoutError)
    assert (timed_out.job_id, timed_out.position, timed_out.timeout, timed_out.pid) == (0, 1, 2.5, 1001)
    assert isinstance(ResultHandler._lost_error(record, (0, 0), -9), WorkerLostError)


# --- worker.worker_loop: a live worker whose pipes break ---------------------------------------


def process_worker_pipes(tasks: int) -> tuple[Connection, Connection, Connection]:
    """A process worker's inbox holding `tasks` calls of square, which the pool has then closed:
    the worker's ends of its inbox and outbox, and the pool's end of its outbox."""
    inbox, pool_inbox = multiprocessing.Pipe(duplex=False)
    pool_outbox, outbox = multiprocessing.Pipe(duplex=False)
    pickler = wire.Pickler()
    for number in range(1, tasks + 1):
        packed = wire.pack_task(0, number - 1, Call(square, (number,), {}), pickler)
        wire.write_frames(pool_inbox.fileno(), wire.task_frame(number, packed))
    pool_inbox.close()  # what is written stays readable; then the worker reads the end
    return inbox, outbox, pool_outbox


def test_a_worker_whose_outbox_breaks_stops_and_starts_no_other_task() -> None:
    """The pool's end of the outbox is closed while two tasks wait in the inbox: the worker's
    first reply fails with BrokenPipeError, and it ends quietly without claiming the second.
    Kills the removal of `except (EOFError, OSError)` around the reply in _run_task, and of
    `if ran is None: return True` in worker_loop."""
    inbox, outbox, pool_outbox = process_worker_pipes(tasks=2)
    pool_outbox.close()
    claims = SharedClaimWord()
    try:
        assert worker_loop(ProcessPort(inbox, outbox, claims), None, (), None) is True
        assert claims.started()[0] == 1  # the task whose reply broke; task 2 was never claimed
    finally:
        inbox.close()
        outbox.close()
        claims.close()


def test_a_worker_whose_inbox_ends_stops_quietly() -> None:
    """The pool closes a worker's inbox (it has gone away): the worker ends without an error.
    Kills the removal of `except (EOFError, OSError)` around receive in worker_loop."""
    inbox, outbox, pool_outbox = process_worker_pipes(tasks=1)
    claims = SharedClaimWord()
    try:
        assert worker_loop(ProcessPort(inbox, outbox, claims), None, (), None) is True
        [message] = wire.FrameReader().feed(os.read(pool_outbox.fileno(), 65536))
        outcome = wire.unpack_outcome(message)
        assert (outcome.job_id, outcome.position, outcome.success) == (0, 0, True)
        assert wire.loads(outcome.payload) == 1  # it ran its one task, then read the end
    finally:
        for connection in (inbox, outbox, pool_outbox):
            connection.close()
        claims.close()


# --- roster: initializer pauses, cancel marks, thread workers, timed tasks, the inbox budget ----
# The roster's own tests cover handing out, settling, take-back and sentinels; these cover what
# only the behaviour tests of initializers, cancellation and timeouts reached.

SECOND = 10**9  # nanoseconds, as time.monotonic_ns() counts


def one_worker_roster(
    depth: int, budget: int | None = None, observe: Callable[[Observation], None] | None = None
) -> tuple[Roster, FakeHandle]:
    roster = Roster(1, None, depth, observe)
    worker = FakeHandle(roster.new_worker_id(), budget)
    with roster.cond:
        roster.add(worker)
    return roster, worker


def ready_task(job: int, position: int, size: int = 10, timeout: float | None = None) -> ReadyTask:
    return ReadyTask((job, position), f"wire{(job, position)}", size, timeout)


def held_by(roster: Roster, worker: FakeHandle) -> list[TaskKey]:
    return list(roster.workers[worker.worker_id].held)


def test_the_pause_after_initializer_failures_starts_at_its_first_length_and_doubles() -> None:
    """Kills `failures - 1` -> `failures - 2` in initializer_pause_ms."""
    assert [initializer_pause_ms(n) for n in range(4)] == [0, 100, 200, 400]
    assert FIRST_INITIALIZER_PAUSE_MS == 100


def test_a_first_initializer_failure_requeues_the_workers_tasks_and_fails_none() -> None:
    """Kills the `not` added before `self.initializer_failures < ...` in reap_uninitialized."""
    roster, worker = one_worker_roster(depth=2)
    roster.offer([ready_task(0, i) for i in range(3)])[0].send()
    record, failed, _ = roster.reap_uninitialized(worker.worker_id, 1)
    assert record is not None and failed == []
    assert [task.key for task in roster.ready] == [(0, 0), (0, 1), (0, 2)]


def test_offer_drops_the_prepared_tasks_of_a_cancelled_job_only() -> None:
    """The marks are job ids. Kills `task.key[0] in cancelled` -> `task.key[-1] in cancelled`
    in Roster.offer (it would look at the task's position)."""
    roster, worker = one_worker_roster(depth=4)
    roster.cancelled.add(7)
    handout, taken = roster.offer([ready_task(7, 3), ready_task(8, 7)])
    handout.send()
    assert taken == 2
    assert held_by(roster, worker) == [(8, 7)]


def test_cancel_says_it_dropped_the_jobs_tasks_and_no_others() -> None:
    """A worker holds tasks of two jobs and has started the first; cancelling the second takes
    back the rest: the second job's are dropped, the first's go back to `ready`. Job ids are
    compared by value: past 256 the same id may be two int objects. Kills, in Roster.cancel,
    `key[0] == job_id` -> `key[0] <= job_id` where it lists what it dropped from a worker,
    `key[0] != job_id` -> `key[0] is not job_id` where it puts back the others' tasks, and the
    removal of the `not` that skips workers holding nothing of the job."""
    first, second = 1000, int("1001")  # int() makes an object of its own
    trace: list[Observation] = []
    roster, worker = one_worker_roster(depth=4, observe=trace.append)
    keys = [(first, 0), (first, 1), (1001, 0), (1001, 1)]
    roster.offer([ready_task(*key) for key in keys])[0].send()
    worker.claims.claimed = 1  # (first, 0) has started
    roster.cancel(second).send()
    assert [o for o in trace if isinstance(o, JobCancelled)] == [JobCancelled(second, tuple(keys[2:]), ())]
    assert held_by(roster, worker) == [(first, 0)]
    assert [task.key for task in roster.ready] == [(first, 1)]  # its worker is busy and stalled


def test_cancel_drops_the_jobs_waiting_tasks_and_keeps_the_others_in_order() -> None:
    """Kills `task.key[0] != job_id` -> `task.key[0] >= job_id` where Roster.cancel keeps the
    other jobs' tasks waiting in `ready`."""
    roster, worker = one_worker_roster(depth=1)
    keys = [(1, 0), (2, 0), (1, 1), (2, 1), (3, 0)]
    roster.offer([ready_task(*key) for key in keys])[0].send()
    assert held_by(roster, worker) == [(1, 0)]
    roster.cancel(2).send()
    assert [task.key for task in roster.ready] == [(1, 1), (3, 0)]


def test_a_terminating_roster_takes_no_task_offered() -> None:
    """Kills `return NOTHING, 0` -> `return NOTHING, 1` in Roster.offer."""
    roster, worker = one_worker_roster(depth=2)
    roster.terminate()
    assert roster.offer([ready_task(0, 0)]) == (NOTHING, 0)
    assert held_by(roster, worker) == [] and not roster.ready


def test_a_thread_worker_that_still_has_tasks_is_served_nothing_when_it_reports() -> None:
    """settle_many frees what a thread worker finished and serves it only if it is out of
    tasks (`more`). Kills `not more` -> `more` in Roster.settle_many."""
    roster, worker = one_worker_roster(depth=1)
    roster.offer([ready_task(0, 0), ready_task(0, 1)])[0].send()
    assert roster.settle_many(worker.worker_id, [((0, 0), True)], more=False) == NOTHING
    assert [task.key for task in roster.ready] == [(0, 1)]
    roster.settle_many(worker.worker_id, [], more=True).send()
    assert held_by(roster, worker) == [(0, 1)] and not roster.ready


def test_only_a_timed_task_wakes_the_timekeeper() -> None:
    """Kills the `not` added before `task.timeout is not None` in Roster._hold."""
    roster, _ = one_worker_roster(depth=4)
    woken: list[None] = []
    roster.on_timed_task = lambda: woken.append(None)
    roster.offer([ready_task(0, 0)])[0].send()
    assert woken == []
    roster.offer([ready_task(0, 1, timeout=1.0)])[0].send()
    assert woken == [None]


def test_a_running_timed_task_is_stopped_when_due_and_not_before() -> None:
    """Its clock starts at its claim. Kills, in expire_due, `claimed_at + limit` ->
    `claimed_at | limit`, `held.timeout * 1e9` -> `held.timeout | 1e9`, and `next_due - now` ->
    `next_due >> now` or `<< now`; and `claimed != number` -> `claimed is number` in
    _stop_for_timeout (the worker would be left running)."""
    roster, worker = one_worker_roster(depth=2)
    roster.offer([ready_task(0, 0, timeout=1.0)])[0].send()
    worker.claims.claimed, worker.claims.claimed_at = 1, SECOND
    _, wait = roster.expire_due(SECOND + SECOND // 4)
    assert not worker.stopped and wait == 0.75
    roster.expire_due(2 * SECOND)
    assert worker.stopped


def test_a_timed_task_not_started_cannot_be_due_before_its_whole_timeout() -> None:
    """Kills `now + limit` -> `now >> limit` in expire_due (the timekeeper would wake at once,
    and again, for a task not started yet)."""
    roster, worker = one_worker_roster(depth=2)
    roster.offer([ready_task(0, 0), ready_task(0, 1, timeout=2.0)])[0].send()
    worker.claims.claimed, worker.claims.claimed_at = 1, SECOND  # (0, 0) runs, untimed
    _, wait = roster.expire_due(5 * SECOND)
    assert wait == 2.0 and not worker.stopped


def test_a_busy_worker_takes_a_task_that_exactly_fills_its_inbox_budget() -> None:
    """Kills `held_bytes: int = 0` -> `= 1` on WorkerRecord: a byte counted that was never
    sent would refuse the task that fits exactly."""
    roster, worker = one_worker_roster(depth=3, budget=20)
    roster.offer([ready_task(0, 0, size=10), ready_task(0, 1, size=10)])[0].send()
    assert held_by(roster, worker) == [(0, 0), (0, 1)]


# --- task_handler: cancel marks and inputs that may wait -------------------------------------


class Batches:
    """The task queue as the task handler reads it; when it would wait for more, the pool
    terminates, so that the handler runs to its end in the test's thread."""

    def __init__(self, *batches: TaskBatch) -> None:
        self._items: deque[TaskBatch | QueueMark] = deque(batches)

    def get_nowait(self) -> TaskBatch | QueueMark:
        if not self._items:
            raise Empty
        return self._items.popleft()

    def get(self) -> TaskBatch | QueueMark:
        return self._items.popleft() if self._items else TERMINATED

    def empty(self) -> bool:
        return not self._items


class EncodingTransport:
    def encode(self, task: Any) -> object:
        return ("wire", task.job_id, task.position)

    def size(self, encoded: object) -> int:
        return 10

    def wake(self) -> None: ...


def run_task_handler(
    roster: Roster, batch: TaskBatch, transport: Any = None, cache: JobCache | None = None
) -> None:
    transport = EncodingTransport() if transport is None else transport
    cache = JobCache() if cache is None else cache  # an empty cache is false: its len() is 0
    TaskHandler(Batches(batch), roster, transport, cache)._run()  # type: ignore[arg-type]


def calls(count: int) -> Iterator[Call]:
    for x in range(count):
        yield Call(square, (x,), {})


def test_the_task_handler_keeps_the_cancel_marks_while_it_holds_prepared_tasks() -> None:
    """A job is cancelled after its tasks were prepared and before they were offered: the
    marks must stay until they are, so that `offer` drops them. Kills the removal of the `not`
    in `if not prepared and self._roster.cancelled` in TaskHandler._run."""
    roster, worker = one_worker_roster(depth=4)

    def two_calls_then_cancelled() -> Iterator[Call]:
        yield from calls(2)
        roster.cancel(5).send()

    run_task_handler(roster, TaskBatch(5, two_calls_then_cancelled(), None, in_memory=True))
    assert held_by(roster, worker) == [] and not roster.ready


def test_the_task_handler_reads_a_cancelled_jobs_input_no_further() -> None:
    """Kills the `not` added in `if cancelled and batch.job_id in cancelled` in
    TaskHandler._hand_out."""
    roster, worker = one_worker_roster(depth=4)
    drawn: list[int] = []

    def cancelled_after_its_first_call() -> Iterator[Call]:
        for x in range(5):
            if x == 1:
                roster.cancel(6).send()
            drawn.append(x)
            yield Call(square, (x,), {})

    run_task_handler(roster, TaskBatch(6, cancelled_after_its_first_call(), None, in_memory=False))
    assert drawn == [0, 1]
    assert held_by(roster, worker) == []  # (6, 0) taken back, (6, 1) dropped when offered


def test_a_task_read_from_an_input_that_may_wait_goes_out_before_the_next_is_read() -> None:
    """Kills `else 1` -> `else 2` for `at_once` in TaskHandler._hand_out (the first task of a
    slow generator would wait for the second)."""
    roster, worker = one_worker_roster(depth=4)
    held_when_asked: list[list[TaskKey]] = []

    def slow_input() -> Iterator[Call]:
        yield Call(square, (0,), {})
        held_when_asked.append(held_by(roster, worker))

    run_task_handler(roster, TaskBatch(7, slow_input(), None, in_memory=False))
    assert held_when_asked == [[(7, 0)]]


class RefusesSecondTask(EncodingTransport):
    def encode(self, task: Any) -> object:
        if task.position == 1:
            raise TypeError("cannot pickle this call")
        return super().encode(task)


def test_a_task_that_cannot_be_encoded_fails_alone_and_the_others_go_out() -> None:
    """Kills the replacement of `except Exception` in TaskHandler._prepare."""
    roster, worker = one_worker_roster(depth=4)
    cache = RecordingCache()
    batch = TaskBatch(8, calls(3), None, in_memory=True)
    run_task_handler(roster, batch, transport=RefusesSecondTask(), cache=cache)
    [(key, success, error)] = cache.delivered
    assert (key, success) == ((8, 1), False) and isinstance(error, TypeError)
    assert held_by(roster, worker) == [(8, 0), (8, 2)]


# --- worker_handler: pauses and retries --------------------------------------------------------


class StartsOnSecondTry:
    """Starting a worker fails once (no fds, say), then works."""

    def __init__(self) -> None:
        self.tries = 0
        self.started = threading.Event()

    def start_worker(self, worker_id: int) -> FakeHandle:
        self.tries += 1
        if self.tries == 1:
            raise OSError("no file descriptors left")
        self.started.set()
        return FakeHandle(worker_id)

    def wake(self) -> None: ...


def test_a_failed_worker_start_is_retried() -> None:
    """Kills RETRY_AFTER_START_FAILURE = 0.5 -> -0.5 (the worker handler's thread would die
    of the negative timeout, and the worker would never start)."""
    roster = Roster(1, None, 2)
    transport = StartsOnSecondTry()
    handler = WorkerHandler(roster, transport)  # type: ignore[arg-type]
    handler.thread.start()
    handler.worker_reaped()
    try:
        assert transport.started.wait(timeout=10)
        assert transport.tries == 2
    finally:
        handler.stop()
        handler.thread.join(timeout=10)


def test_the_pause_after_an_initializer_failure_lasts_its_length() -> None:
    """100 ms after one failure. Kills `deadline - time.monotonic()` -> `deadline //
    time.monotonic()` in _pause_after_initializer_failures (it would wait a whole second)."""
    roster = Roster(1, None, 2)
    roster.initializer_failures = 1
    handler = WorkerHandler(roster, StartsOnSecondTry())  # type: ignore[arg-type]
    started = time.monotonic()
    assert handler._pause_after_initializer_failures() is True
    assert 0.09 <= time.monotonic() - started < 0.6


# --- core: the observer, timed tasks, terminate ------------------------------------------------


def test_the_observer_sees_each_change_of_state_once() -> None:
    """Kills `self.lifecycle.state is not before` -> `is before` in PoolCore._report."""
    trace: list[Observation] = []
    pool = refpool.ThreadPool(1, observer=trace.append)
    pool.close()
    pool.close()  # no change: nothing to report
    pool.join()
    pool.terminate()
    changes = [(o.before, o.after) for o in trace if isinstance(o, StateChanged)]
    assert changes == [(S.INIT, S.RUN), (S.RUN, S.CLOSE), (S.CLOSE, S.TERMINATE)]


def test_a_first_job_with_a_timeout_starts_the_timekeeper() -> None:
    """Kills the `not` added in `if batch.timeout is not None` in PoolCore.enqueue (the first
    timed task would run past its timeout, with no timekeeper to stop it)."""
    with refpool.Pool(1, context=multiprocessing.get_context("fork")) as pool:
        late = pool.apply_async(sleep_for, (30,), timeout=0.2)
        with pytest.raises(TaskTimeoutError):
            late.get(timeout=15)


def test_terminate_stops_a_process_worker_in_the_middle_of_a_task(tmp_path: pathlib.Path) -> None:
    """Kills the loop that kills every worker in PoolCore._stop_everything becoming a loop over
    nothing (join() would wait for the task to end)."""
    started, never = str(tmp_path / "started"), str(tmp_path / "never")
    pool = refpool.Pool(1, context=multiprocessing.get_context("fork"))
    pool.apply_async(start_then_wait_for_file, (started, never))
    deadline = time.monotonic() + 15
    # Polling is the only way to see a file appear; each step is short.
    while not os.path.exists(started) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert os.path.exists(started)
    began = time.monotonic()
    pool.terminate()
    pool.join()
    assert time.monotonic() - began < 10  # the task would wait 30 s for a file that never comes


# --- buffered: closing, the end of the input, job_id ------------------------------------------


def test_a_chunked_imap_that_is_closed_yields_nothing_more() -> None:
    """Kills `self._done = True` -> `False` in IMapResults.close."""
    with refpool.ThreadPool(2) as pool:
        results = pool.imap(square, range(10), chunksize=2)
        assert next(results) == 0
        results.close()  # type: ignore[attr-defined]  # imap is typed as returning an Iterator
        with pytest.raises(StopIteration):
            next(results)


def test_a_buffered_imap_asks_an_input_that_ended_for_nothing_more() -> None:
    """Kills `self._open = False` -> `True` where InputFeed._draw_one meets the end of the
    input: it would draw again while the tasks drawn run (here, until a gate opens)."""
    gate = threading.Event()

    def square_after_the_gate(x: int) -> int:
        assert gate.wait(timeout=10)
        return x * x

    source = StopsThenGoesOn(StopIteration())
    with refpool.ThreadPool(2) as pool:
        results = pool.imap(square_after_the_gate, source, buffersize=4)
        asked_before_any_result = source.asked
        gate.set()
        assert list(results) == [1, 4]
    assert asked_before_any_result == 3 and source.asked == 3


def test_a_chunked_imaps_job_id_is_its_jobs() -> None:
    """Kills the removal of `@property` on IMapResults.job_id."""
    with refpool.ThreadPool(1) as pool:
        results = pool.imap(square, range(4), chunksize=2)
        assert isinstance(results.job_id, int)  # type: ignore[attr-defined]
        assert list(results) == [0, 1, 4, 9]


# --- timekeeper: starting once, stopping --------------------------------------------------------


def test_the_timekeeper_starts_one_daemon_thread_once_and_stops_when_told() -> None:
    """Kills, in Timekeeper, `daemon=True` -> `False` (a pool the program forgot to close would
    keep it from exiting), `and` -> `or` in start (a second thread), and, in stop and _run,
    `_stopping = True` -> `False` and `and` -> `or` (the thread would never end)."""
    keeper = Timekeeper(Roster(1, None, 2))
    keeper.start()
    thread = keeper.thread
    assert thread is not None and thread.daemon
    keeper.start()
    assert keeper.thread is thread
    keeper.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_timekeeper_told_to_stop_before_it_started_never_starts() -> None:
    """Kills `and` -> `or` in Timekeeper.start."""
    keeper = Timekeeper(Roster(1, None, 2))
    keeper.stop()
    keeper.start()
    assert keeper.thread is None


# --- worker: taken-back tasks and maxtasks, a pool that is gone already -------------------------


class SkipsSecondTask:
    """A worker port with four tasks, the second taken back before the worker reached it."""

    def __init__(self) -> None:
        self.tasks = [(number, Call(square, (number,), {})) for number in range(1, 5)]
        self.ran: list[int] = []

    def receive(self) -> tuple[int, Any]:
        number, call = self.tasks.pop(0)
        return number, Task(0, number - 1, call)

    def claim(self, number: int) -> bool:
        return number != 2

    def open(self, call: Any) -> Any:
        return call

    def reply(self, job_id: int, index: int, success: bool, value: Any) -> None:
        self.ran.append(index + 1)

    def initializer_failed(self, error: Exception) -> None: ...


def test_a_task_taken_back_does_not_count_towards_maxtasksperchild() -> None:
    """Kills `return False` -> `return True` when the claim fails in _run_task."""
    port = SkipsSecondTask()
    assert worker_loop(port, None, (), 2) is True
    assert port.ran == [1, 3]


def _watch_then_wait(pool_pid: int) -> None:
    watch_pool(pool_pid)
    threading.Event().wait(30)  # only the watch can end this process in time


def test_a_worker_whose_pool_exited_before_it_could_be_watched_exits() -> None:
    """Kills the replacement of `except ProcessLookupError` in watch_pool (the worker would
    fall back to watching its parent, which lives on)."""
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: no process has this pid now
    worker = multiprocessing.get_context("fork").Process(target=_watch_then_wait, args=(gone.pid,))
    worker.start()
    worker.join(timeout=10)
    try:
        assert worker.exitcode == 1
    finally:
        worker.kill()
        worker.join()


# --- core: a pool that fails to start ---------------------------------------------------------


def test_a_pool_whose_second_worker_cannot_start_stops_the_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The constructor raises the start's error, and leaves no worker behind. Kills the
    replacement of `except BaseException` in PoolCore.start (the first worker would be left
    running, with no pool to stop it)."""
    start_worker = transport.ThreadTransport.start_worker
    started: list[threading.Thread] = []

    def second_start_fails(self: transport.ThreadTransport, worker_id: int) -> Any:
        if started:
            raise OSError("no threads left")
        before = set(threading.enumerate())
        handle = start_worker(self, worker_id)
        started.extend(set(threading.enumerate()) - before)
        return handle

    monkeypatch.setattr(transport.ThreadTransport, "start_worker", second_start_fails)
    with pytest.raises(OSError, match="no threads left"):
        refpool.ThreadPool(2)
    [first] = started
    first.join(timeout=10)
    assert not first.is_alive()
