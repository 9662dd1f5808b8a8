"""Bad input to every public method: each gets a clear error, and no other job or the pool suffers.

The table in spec/reliability.md ("Bad input") is written from these tests: one row per
(method, bad input). Each test checks the error (its type, and a message that names the
bad argument or value), that a job in flight at the same time completes, and that the pool
runs a follow-up task. Checks made in the caller do not depend on the pool's kind and run
on a thread pool and a fork pool; what crosses a process boundary runs on every kind.
"""

from __future__ import annotations

import inspect
import math
import multiprocessing
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import refpool

from bad_input_helpers import MEGABYTE, big_bytes, is_a_string, raise_keyboard_interrupt, raise_system_exit
from pool_helpers import (
    MakePool,
    NeedsTwoArgs,
    add,
    call_sys_exit,
    identity,
    length,
    raise_needs_two_args,
    raising_generator,
    square,
    unpicklable_result,
    wait_for_file,
)

WAIT = 30  # seconds: a bound on every blocking call, never reached when things work

# At module level, so that a process pool tries to pickle it by name, and fails (ERR-3).
LAMBDA = lambda x: x  # noqa: E731


def make(kind: str, processes: int = 2) -> refpool.Pool:
    if kind == "thread":
        return refpool.ThreadPool(processes)
    return refpool.Pool(processes, context=multiprocessing.get_context(kind))


def shut(pool: refpool.Pool) -> None:
    pool.terminate()
    pool.join()


@pytest.fixture(scope="module", params=["thread", "fork"])
def shared_pool(request: pytest.FixtureRequest) -> Iterator[refpool.Pool]:
    """One pool for a whole table of refused calls: a refused call must leave it as it was."""
    pool = make(request.param)
    yield pool
    shut(pool)


@pytest.fixture(params=["thread", "fork"])
def cheap_pool(request: pytest.FixtureRequest) -> Iterator[refpool.Pool]:
    """A fresh pool of a kind that starts fast, where the pool's kind does not matter."""
    pool = make(request.param)
    yield pool
    shut(pool)


def described(error: BaseException) -> str:
    """What a reader of the error sees: its message and its notes."""
    return " ".join([str(error), *getattr(error, "__notes__", [])])


class HeldJob:
    """A job that stays in flight, holding one worker, until the test releases it."""

    def __init__(self, pool: refpool.Pool, directory: Path, name: str = "release") -> None:
        self.path = str(directory / name)
        self.job = pool.apply_async(wait_for_file, (self.path,))

    def release(self) -> None:
        Path(self.path).touch()

    def check(self) -> None:
        """Release the job and check that it completed with its own result."""
        self.release()
        assert self.job.get(WAIT) == self.path


def check_pool_still_works(pool: refpool.Pool) -> None:
    assert pool.apply(square, (7,)) == 49
    assert pool.map(square, range(6), chunksize=2) == [0, 1, 4, 9, 16, 25]


# --- the constructor ---------------------------------------------------------------------

CONSTRUCTOR_CASES = [
    pytest.param({"processes": 0}, ValueError, r"^Number of processes must be at least 1", id="processes=0"),
    pytest.param(
        {"processes": -1}, ValueError, r"^Number of processes must be at least 1", id="processes=-1"
    ),
    pytest.param(
        {"processes": "2"}, TypeError, r"^processes must be an int or None, not '2'$", id="processes='2'"
    ),
    pytest.param(
        {"processes": 2.5}, TypeError, r"^processes must be an int or None, not 2\.5$", id="processes=2.5"
    ),
    pytest.param(
        {"maxtasksperchild": 0},
        ValueError,
        r"^maxtasksperchild must be a positive int or None",
        id="maxtasks=0",
    ),
    pytest.param(
        {"maxtasksperchild": -1},
        ValueError,
        r"^maxtasksperchild must be a positive int or None",
        id="maxtasks=-1",
    ),
    pytest.param(
        {"maxtasksperchild": 1.5},
        ValueError,
        r"^maxtasksperchild must be a positive int or None",
        id="maxtasks=1.5",
    ),
    pytest.param({"initializer": 5}, TypeError, r"^initializer must be a callable$", id="initializer=5"),
    pytest.param({"initargs": 5}, TypeError, r"^initargs must be an iterable, not 5$", id="initargs=5"),
    pytest.param(
        {"context": "fork"},
        TypeError,
        r"^context must be a multiprocessing context or None, not 'fork' \(use multiprocessing\.get_context",
        id="context='fork'",
    ),
    pytest.param(
        {"observer": 5}, TypeError, r"^observer must be a callable or None, not 5$", id="observer=5"
    ),
]


@pytest.mark.parametrize(("options", "error", "message"), CONSTRUCTOR_CASES)
def test_a_constructor_argument_that_is_bad_is_refused_before_any_worker_starts(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Checks API-7, API-12, API-14: CPython's messages where it has them; each error names the
    argument, and the bad value (in the message or a note); no process or thread is started."""
    threads_before = threading.active_count()
    with pytest.raises(error, match=message) as caught:
        refpool.Pool(**{"processes": 1, **options})
    name, value = next(iter(options.items()))
    assert name in described(caught.value)
    if name != "initializer":  # CPython's message, which names no value
        assert repr(value) in described(caught.value)
    assert multiprocessing.active_children() == []
    assert threading.active_count() == threads_before


# --- submitting: what the caller passes is checked in the caller, at once ------------------

SUBMIT_CASES = [
    pytest.param(lambda p: p.apply(5), TypeError, r"^func must be a callable, not 5$", id="apply-func=5"),
    pytest.param(
        lambda p: p.apply_async(None),
        TypeError,
        r"^func must be a callable, not None$",
        id="apply_async-func=None",
    ),
    pytest.param(
        lambda p: p.apply(square, 5), TypeError, r"^args must be an iterable, not 5$", id="apply-args=5"
    ),
    pytest.param(
        lambda p: p.apply_async(square, (), [("x", 1)]),
        TypeError,
        r"^kwds must be a mapping, not \[\('x', 1\)\]$",
        id="apply_async-kwds=pairs",
    ),
    pytest.param(
        lambda p: p.apply_async(square, (1,), None),
        TypeError,
        r"^kwds must be a mapping, not None$",
        id="apply_async-kwds=None",
    ),
    pytest.param(
        lambda p: p.apply_async(square, (1,), {1: 2}),
        TypeError,
        r"^kwds keys must be strings, not 1$",
        id="apply_async-kwds-int-key",
    ),
    pytest.param(
        lambda p: p.apply_async(square, (1,), callback=5),
        TypeError,
        r"^callback must be a callable or None, not 5$",
        id="apply_async-callback=5",
    ),
    pytest.param(
        lambda p: p.apply_async(square, (1,), error_callback="log"),
        TypeError,
        r"^error_callback must be a callable or None, not 'log'$",
        id="apply_async-error_callback='log'",
    ),
    pytest.param(
        lambda p: p.map(5, []), TypeError, r"^func must be a callable, not 5$", id="map-func=5-empty"
    ),
    pytest.param(
        lambda p: p.map(square, 5), TypeError, r"^iterable must be an iterable, not 5$", id="map-iterable=5"
    ),
    pytest.param(
        lambda p: p.map(square, [1], 0), ValueError, r"^Chunksize must be 1\+, not 0$", id="map-chunksize=0"
    ),
    pytest.param(
        lambda p: p.map_async(square, [1], -1),
        ValueError,
        r"^Chunksize must be 1\+, not -1$",
        id="map_async-chunksize=-1",
    ),
    pytest.param(
        lambda p: p.map_async(square, [1], 1.5),
        TypeError,
        r"^chunksize must be an int, not 1\.5$",
        id="map_async-chunksize=1.5",
    ),
    pytest.param(
        lambda p: p.map_async(square, [1], callback=5),
        TypeError,
        r"^callback must be a callable or None, not 5$",
        id="map_async-callback=5",
    ),
    pytest.param(
        lambda p: p.starmap(add, None),
        TypeError,
        r"^iterable must be an iterable, not None$",
        id="starmap-iterable=None",
    ),
    pytest.param(
        lambda p: p.starmap_async(add, [(1, 2)], "2"),
        TypeError,
        r"^chunksize must be an int, not '2'$",
        id="starmap_async-chunksize='2'",
    ),
    pytest.param(
        lambda p: p.starmap_async(add, [(1, 2)], error_callback=5),
        TypeError,
        r"^error_callback must be a callable or None, not 5$",
        id="starmap_async-error_callback=5",
    ),
    pytest.param(
        lambda p: p.imap(None, [1]), TypeError, r"^func must be a callable, not None$", id="imap-func=None"
    ),
    pytest.param(
        lambda p: p.imap(square, 5), TypeError, r"^iterable must be an iterable, not 5$", id="imap-iterable=5"
    ),
    pytest.param(
        lambda p: p.imap(square, [1], 0), ValueError, r"^Chunksize must be 1\+, not 0$", id="imap-chunksize=0"
    ),
    pytest.param(
        lambda p: p.imap(square, [1], None),
        TypeError,
        r"^chunksize must be an int, not None$",
        id="imap-chunksize=None",
    ),
    pytest.param(
        lambda p: p.imap_unordered(square, None),
        TypeError,
        r"^iterable must be an iterable, not None$",
        id="imap_unordered-iterable=None",
    ),
    pytest.param(
        lambda p: p.imap_unordered(square, [1], -2),
        ValueError,
        r"^Chunksize must be 1\+, not -2$",
        id="imap_unordered-chunksize=-2",
    ),
]


@pytest.mark.parametrize(("submit", "error", "message"), SUBMIT_CASES)
def test_a_submit_with_a_bad_argument_is_refused_at_once(
    shared_pool: refpool.Pool, submit: Callable[[Any], object], error: type[Exception], message: str
) -> None:
    """Checks API-3, API-11, JOB-7, API-13: the call raises, naming the argument and its value,
    before any job is made; the job in flight completes and the pool goes on. (JOB-1)"""
    in_flight = shared_pool.map_async(square, range(40), chunksize=1)
    with pytest.raises(error, match=message):
        submit(shared_pool)
    assert in_flight.get(WAIT) == [x * x for x in range(40)]
    assert len(shared_pool._live_core().cache) == 0  # the refused call left no job behind
    assert shared_pool.apply(square, (7,)) == 49


def test_seeded_bug_without_the_func_check_a_bad_func_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeded bug: submit no longer checks func (API-13); the refusal the table relies on fails,
    and the job fails later, in the worker, with an error that names neither argument nor job."""
    monkeypatch.setattr("refpool.pool.check_func", lambda func: None)
    pool = refpool.ThreadPool(1)
    try:
        refusal = pytest.raises(TypeError, match=r"^func must be a callable, not 5$")
        with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"), refusal:
            job = pool.apply_async(5)
        with pytest.raises(TypeError, match=r"^'int' object is not callable$"):
            job.get(WAIT)
    finally:
        shut(pool)


# --- inputs that raise while they are read -------------------------------------------------


@pytest.mark.parametrize("method", ["map", "map_async", "starmap", "starmap_async"])
def test_a_map_input_that_raises_midway_raises_in_the_caller(shared_pool: refpool.Pool, method: str) -> None:
    """Checks API-2: map reads its input whole, in the caller, before any task runs; so the
    input's own exception reaches the caller unchanged and no job is made (as CPython)."""
    in_flight = shared_pool.map_async(square, range(40), chunksize=1)
    items = raising_generator(3)
    if method.startswith("starmap"):
        items = ((x, x) for x in items)
    function = add if method.startswith("starmap") else square
    with pytest.raises(KeyError, match="input failed"):
        getattr(shared_pool, method)(function, items)
    assert in_flight.get(WAIT) == [x * x for x in range(40)]
    assert len(shared_pool._live_core().cache) == 0
    check_pool_still_works(shared_pool)


def drain(iterator: Iterator[Any]) -> list[Any]:
    """Every outcome of an imap iterator, in order: a result, or the exception it raised."""
    outcomes: list[Any] = []
    while True:
        try:
            outcomes.append(next(iterator))
        except StopIteration:
            return outcomes
        except Exception as error:
            outcomes.append(error)


@pytest.mark.parametrize(("method", "chunksize"), [("imap", 1), ("imap", 2), ("imap_unordered", 1)])
def test_an_imap_input_that_raises_midway_fails_that_iterator_only(
    shared_pool: refpool.Pool, method: str, chunksize: int
) -> None:
    """Checks API-6: imap yields the results before the input failed, then its exception, then
    stops; imap_unordered yields every result and the exception once, in the order they come."""
    in_flight = shared_pool.map_async(square, range(40), chunksize=1)
    outcomes = drain(getattr(shared_pool, method)(square, raising_generator(4), chunksize))
    errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    results = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], KeyError) and "input failed" in str(errors[0])
    if method == "imap":
        assert outcomes == [0, 1, 4, 9, errors[0]]
    assert sorted(results) == [0, 1, 4, 9]
    assert in_flight.get(WAIT) == [x * x for x in range(40)]
    check_pool_still_works(shared_pool)


def test_an_imap_unordered_input_that_raises_ends_a_chunked_iterator_at_the_error(
    shared_pool: refpool.Pool,
) -> None:
    """Checks API-6 for imap_unordered with chunksize > 1 (as CPython): the iterator is a
    generator over chunks, so the error, which comes as soon as the input raises, ends it; the
    chunks that finish after it are not yielded."""
    in_flight = shared_pool.map_async(square, range(40), chunksize=1)
    outcomes = drain(shared_pool.imap_unordered(square, raising_generator(4), 2))
    assert isinstance(outcomes[-1], KeyError) and "input failed" in str(outcomes[-1])
    assert set(outcomes[:-1]) <= {0, 1, 4, 9}
    assert in_flight.get(WAIT) == [x * x for x in range(40)]
    check_pool_still_works(shared_pool)


# --- waiting: timeouts and results not ready -----------------------------------------------


def test_a_zero_or_negative_timeout_polls() -> None:
    """Checks JOB-2, API-4, API-16: get, wait and next with a timeout of 0 or below return at
    once (TimeoutError if the job has not settled; as CPython); successful() before then raises
    ValueError naming the result; the job then completes."""
    pool = refpool.ThreadPool(2)
    gate = threading.Event()
    try:
        job = pool.apply_async(gate.wait, (WAIT,))
        iterator = pool.imap(gate.wait, [WAIT])
        for timeout in (0, -1, -1e9):
            with pytest.raises(multiprocessing.TimeoutError):
                job.get(timeout)
            job.wait(timeout)  # returns at once
            assert not job.ready()
            with pytest.raises(multiprocessing.TimeoutError):
                iterator.next(timeout)
        with pytest.raises(ValueError, match=r"^<refpool\.jobs\.ApplyResult .*> not ready$"):
            job.successful()
        gate.set()
        assert job.get(WAIT) is True and job.successful()
        assert iterator.next(WAIT) is True
    finally:
        gate.set()
        shut(pool)


def test_a_timeout_that_is_not_a_number_is_a_type_error_while_the_job_waits() -> None:
    """Checks API-16: a TypeError naming the timeout (CPython's, from threading, names neither
    the argument nor the value)."""
    pool = refpool.ThreadPool(1)
    gate = threading.Event()
    try:
        job = pool.apply_async(gate.wait, (WAIT,))
        iterator = pool.imap(gate.wait, [WAIT])
        with pytest.raises(TypeError, match=r"^timeout must be a number or None, not '1'$"):
            job.get("1")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^timeout must be a number or None, not '1'$"):
            iterator.next("1")
        gate.set()
        assert job.get(WAIT) is True
    finally:
        gate.set()
        shut(pool)


def test_a_timeout_that_is_not_a_number_is_refused_even_when_the_job_is_ready() -> None:
    """Checks API-16: get('1') on a settled job is refused (CPython returns the value)."""
    pool = refpool.ThreadPool(1)
    try:
        job = pool.apply_async(square, (3,))
        assert job.get(WAIT) == 9
        with pytest.raises(TypeError, match="timeout"):
            job.get("1")  # type: ignore[arg-type]
    finally:
        shut(pool)


# --- a task that exits, or raises what is not an Exception --------------------------------

EXITS = [
    (call_sys_exit, (), 0),
    (raise_system_exit, (3,), 3),
    (raise_keyboard_interrupt, (), 1),
]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_task_that_exits_fails_its_job_with_worker_lost_error(
    make_pool: MakePool, pool_kind: str, tmp_path: Path
) -> None:
    """Checks LOST-1, LOST-2: sys.exit(), SystemExit and KeyboardInterrupt in a task end its
    worker (they are not Exceptions, so the worker does not catch them, as in CPython); the job
    fails with WorkerLostError naming the pid and exit code (CPython hangs), a job in flight
    completes, and the replacement worker runs the next task."""
    pool = make_pool()
    held = HeldJob(pool, tmp_path)
    for func, args, exitcode in EXITS:
        with pytest.raises(
            refpool.WorkerLostError, match=r"^worker \(pid \d+\) exited with exit code"
        ) as caught:
            pool.apply(func, args)
        # A thread worker's exit code says only that it ended by an exception.
        assert caught.value.exitcode == (1 if pool_kind == "thread" else exitcode)
        assert f"exit code {caught.value.exitcode} " in str(caught.value)
    with pytest.raises(refpool.WorkerLostError):
        pool.map(call_sys_exit, range(3), chunksize=1)
    held.check()
    check_pool_still_works(pool)


# --- values that cannot travel between processes -------------------------------------------


def test_what_cannot_be_pickled_fails_only_its_own_job(
    make_pool: MakePool, pool_kind: str, tmp_path: Path
) -> None:
    """Checks ERR-1, ERR-2, ERR-3, JOB-3, JOB-6: in a process pool, a lambda (under spawn too),
    an argument or a result that cannot be pickled, and an exception the parent cannot unpickle,
    each fail their own job with an error that names the object; a thread pool pickles nothing
    and runs them all. A job in flight completes; the pool goes on (CPython hangs on the last)."""
    pool = make_pool()
    held = HeldJob(pool, tmp_path)
    lock = threading.Lock()
    if pool_kind == "thread":
        assert pool.apply(LAMBDA, (4,)) == 4
        assert pool.apply(identity, (lock,)) is lock
        assert isinstance(pool.apply(unpicklable_result), type(lock))
        with pytest.raises(NeedsTwoArgs):
            pool.apply(raise_needs_two_args)
        assert pool.map(identity, [1, lock, 3], chunksize=1) == [1, lock, 3]
    else:
        with pytest.raises(Exception, match=r"<lambda>"):  # PicklingError: attribute lookup failed
            pool.apply(LAMBDA, (4,))
        with pytest.raises(TypeError, match=r"^cannot pickle '_thread\.lock' object$"):
            pool.apply(identity, (lock,))
        with pytest.raises(refpool.MaybeEncodingError, match=r"Error sending result: .*_thread\.lock"):
            pool.apply(unpicklable_result)
        with pytest.raises(refpool.ResultDecodingError, match="could not be unpickled") as caught:
            pool.apply(raise_needs_two_args)
        assert any("NeedsTwoArgs" in note for note in caught.value.__notes__)
        with pytest.raises(TypeError, match=r"^cannot pickle '_thread\.lock' object$"):
            pool.map(identity, [1, lock, 3], chunksize=1)
        iterator = pool.imap(identity, [1, lock, 3])
        assert iterator.next(WAIT) == 1
        with pytest.raises(TypeError, match="cannot pickle"):
            iterator.next(WAIT)
        assert iterator.next(WAIT) == 3  # only that item's task failed
    held.check()
    check_pool_still_works(pool)


@pytest.mark.parametrize("kind", ["fork", "thread"])
def test_a_100_megabyte_result_or_argument_just_works(kind: str, tmp_path: Path) -> None:
    """Checks API-1: a 100 MB result comes back whole, and a 100 MB argument goes out whole,
    while a job in flight completes."""
    pool = make(kind)
    try:
        held = HeldJob(pool, tmp_path)
        result = pool.apply(big_bytes, (100 * MEGABYTE,))
        assert len(result) == 100 * MEGABYTE and result.count(0) == len(result)
        assert pool.apply(length, (result,)) == 100 * MEGABYTE
        del result
        held.check()
        check_pool_still_works(pool)
    finally:
        shut(pool)


# --- a KeyboardInterrupt in the caller while it waits --------------------------------------


def _blocking_lines() -> set[int]:
    """The lines of threading.Condition.wait where it blocks: each `waiter.acquire` after `try:`.

    A signal that arrives there interrupts the blocking call itself, which is what the test
    means to check; one that arrived a few lines earlier would be raised before the wait.
    """
    source, first = inspect.getsourcelines(threading.Condition.wait)
    start = next(i for i, line in enumerate(source) if line.strip().startswith("try:"))
    lines = {first + i for i, line in enumerate(source) if i > start and "waiter.acquire(" in line}
    assert lines, "threading.Condition.wait has changed: find where it blocks"
    return lines


BLOCKING_LINES = _blocking_lines()


# Where the pool's caller waits: the frames that must be on the stack when the signal comes
# (threading.Thread.start, for one, also waits in Condition.wait).
WAITING_IN_THE_POOL = {refpool.ApplyResult.wait.__code__, refpool.IMapIterator.next.__code__}


def _blocked_in_the_pool(thread_id: int) -> bool:
    frame = sys._current_frames().get(thread_id)
    if frame is None or frame.f_code is not threading.Condition.wait.__code__:
        return False
    if frame.f_lineno not in BLOCKING_LINES:
        return False
    caller = frame.f_back
    while caller is not None and caller.f_code not in WAITING_IN_THE_POOL:
        caller = caller.f_back
    return caller is not None


def _interrupt_once_blocked(thread_id: int, stop: threading.Event) -> None:
    """Send SIGINT to the thread once it is blocked waiting for a job; give up on `stop`.

    Once in a full run on 3.13 the thread went on waiting after the signal (it
    was never raised there), so a thread still blocked in the pool a second
    later gets another; one that has raised is no longer blocked there.
    """
    while not stop.is_set():
        if _blocked_in_the_pool(thread_id):
            signal.pthread_kill(thread_id, signal.SIGINT)
            stop.wait(1.0)
            continue
        stop.wait(0.001)  # polls the thread's frame: there is no event for "it is blocked now"


@pytest.fixture
def interrupt_when_waiting() -> Iterator[Callable[[Callable[[], object]], None]]:
    """Runs a call that must block in a wait, and interrupts it there with SIGINT."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    stop = threading.Event()
    interrupters: list[threading.Thread] = []

    def run(call: Callable[[], object]) -> None:
        interrupter = threading.Thread(
            target=_interrupt_once_blocked, args=(threading.get_ident(), stop), daemon=True
        )
        interrupters.append(interrupter)
        interrupter.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                call()
        finally:
            stop.set()
            interrupter.join(WAIT)

    yield run
    stop.set()
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("waiting_in", ["get", "map", "next"])
def test_a_keyboard_interrupt_while_the_caller_waits_leaves_the_pool_usable(
    cheap_pool: refpool.Pool,
    interrupt_when_waiting: Callable[[Callable[[], object]], None],
    waiting_in: str,
    tmp_path: Path,
) -> None:
    """Checks JOB-1, API-15: Ctrl-C in get(), map() or next() raises KeyboardInterrupt in the
    caller and changes nothing else: the interrupted job still completes (get and next can be
    called again), a job in flight completes, the pool runs new work and joins cleanly."""
    pool = cheap_pool
    held = HeldJob(pool, tmp_path)
    interrupted = HeldJob(pool, tmp_path, "interrupted")  # its job is not used for "map", "next"
    if waiting_in == "get":
        interrupt_when_waiting(lambda: interrupted.job.get(WAIT))
    elif waiting_in == "map":
        interrupt_when_waiting(lambda: pool.map(wait_for_file, [interrupted.path]))
    else:
        iterator = pool.imap(wait_for_file, [interrupted.path])
        interrupt_when_waiting(lambda: iterator.next(WAIT))
    interrupted.release()
    if waiting_in == "next":
        assert iterator.next(WAIT) == interrupted.path
    interrupted.check()
    held.check()
    check_pool_still_works(pool)
    assert pool.apply(is_a_string, ("the pool is the same",))
    pool.close()
    pool.join()
    assert len(pool._live_core().cache) == 0  # the interrupted map settled too (JOB-1)


def test_an_infinite_timeout_waits_as_none_does() -> None:
    """Checks API-16: get(timeout=math.inf) waits for the job (CPython: OverflowError,
    'timestamp out of range for platform time_t')."""
    pool = refpool.ThreadPool(1)
    gate, stop = threading.Event(), threading.Event()
    caller = threading.get_ident()

    def release_once_blocked() -> None:
        while not stop.is_set():
            if _blocked_in_the_pool(caller):
                gate.set()
                return
            stop.wait(0.001)

    releaser = threading.Thread(target=release_once_blocked, daemon=True)
    try:
        job = pool.apply_async(gate.wait, (WAIT,))
        releaser.start()
        assert job.get(math.inf) is True
    finally:
        stop.set()
        gate.set()
        releaser.join(WAIT)
        shut(pool)
