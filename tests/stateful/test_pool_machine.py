"""Hypothesis stateful tests: a real pool and the executable model, side by side.

Rules are named like the Pool methods, so a shrunk failure prints as a script
a reader can run. After every step the pool's state must be the model's
(LIFE-2, LIFE-3), and the pool's observed trace must keep the spec's
invariants (models/trace_invariants.py: WORK-1, WORK-2, WORK-3, WORK-6,
SHUT-1, SHUT-2, LOST-1, LOST-3, JOB-1). Every job must end as the model says (API-1, API-2,
API-4, JOB-1), or with WorkerLostError exactly when the trace says its
worker died holding it (LOST-1), or with PoolTerminatedError after terminate
(SHUT-5). A job cancelled at any moment ends with JobCancelledError and none
of its tasks is handed out after its cancel (CANCEL-1); a task past its
timeout fails with TaskTimeoutError and never runs again (TIME-2); a buffered
imap never has more than `buffersize` tasks drawn beyond the results taken
(BUF-1). Every blocking call has its own timeout (PITFALLS.md).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import refpool
from models.api_model import (
    ApiModel,
    Expected,
    expect_apply,
    expect_imap,
    expect_map,
    sleep_for,
    square_or_fail,
    square_or_fail_pair,
    unpicklable_result,
)
from models.trace_invariants import check_final, check_trace
from refpool.observer import Observation, StateChanged, WorkerReaped

WAIT = 20  # seconds: a bound on every blocking call; a correct pool answers in milliseconds
TASK_LIMIT = 0.2  # seconds: the timeout of the tasks that run past it
PROCESSES = 2
items = st.lists(st.integers(0, 9), max_size=12)
bad_item = st.one_of(st.none(), st.integers(0, 9))


# Every broken rule, as it was seen. A seeded bug that depends on timing can
# make Hypothesis report "flaky" instead of the failure; the tests that seed
# bugs read what was caught here (tests/stateful/test_stateful_catches_bugs.py).
VIOLATIONS: list[str] = []


def require(condition: bool, message: str) -> None:
    if not condition:
        VIOLATIONS.append(message)
        raise AssertionError(message)


@dataclass
class Pending:
    result: refpool.ApplyResult
    job_id: int
    expected: Expected
    cancelled: bool = False  # cancel() said True: it must end with JobCancelledError (CANCEL-1)


class PoolMachine(RuleBasedStateMachine):
    kind = "thread"

    def __init__(self) -> None:
        super().__init__()
        self.trace: list[Observation] = []
        self.model = ApiModel()
        self.pending: list[Pending] = []
        self.maxtasks: int | None = None
        self.depth = 1
        self.pool: refpool.Pool

    @initialize(maxtasks=st.sampled_from([None, 1, 3]))
    def start(self, maxtasks: int | None) -> None:
        observe = self.trace.append
        if self.kind == "thread":
            self.pool = refpool.ThreadPool(PROCESSES, observer=observe)
            self.depth = self.pool._live_core().roster.depth
        else:
            self.maxtasks = maxtasks
            context = multiprocessing.get_context(self.kind)
            self.pool = refpool.Pool(PROCESSES, maxtasksperchild=maxtasks, context=context, observer=observe)
        self.depth = self.pool._live_core().roster.depth

    # --- the caller's calls ---------------------------------------------
    @rule(x=st.integers(0, 9), bad=bad_item)
    def apply_async(self, x: int, bad: int | None) -> None:
        result = self._submit(lambda: self.pool.apply_async(square_or_fail, (x, bad)))
        if result is not None:
            self.pending.append(Pending(result, result.job_id, expect_apply(x, bad)))

    @rule(xs=items, bad=bad_item, chunksize=st.one_of(st.none(), st.integers(1, 4)))
    def map_async(self, xs: list[int], bad: int | None, chunksize: int | None) -> None:
        pairs = [(x, bad) for x in xs]
        result = self._submit(lambda: self.pool.map_async(square_or_fail_pair, pairs, chunksize))
        if result is not None:
            self.pending.append(Pending(result, result.job_id, expect_map(xs, bad)))

    @rule(xs=items, bad=bad_item, chunksize=st.one_of(st.none(), st.integers(1, 4)))
    def starmap_async(self, xs: list[int], bad: int | None, chunksize: int | None) -> None:
        args = [(x, bad) for x in xs]
        result = self._submit(lambda: self.pool.starmap_async(square_or_fail, args, chunksize))
        if result is not None:
            self.pending.append(Pending(result, result.job_id, expect_map(xs, bad)))

    @rule(xs=items, bad=bad_item)
    def imap(self, xs: list[int], bad: int | None) -> None:
        iterator = self._submit(lambda: self.pool.imap(square_or_fail_pair, [(x, bad) for x in xs]))
        if iterator is not None:
            self._consume(iterator, expect_imap(xs, bad), ordered=True)

    @rule(xs=items, bad=bad_item)
    def imap_unordered(self, xs: list[int], bad: int | None) -> None:
        iterator = self._submit(lambda: self.pool.imap_unordered(square_or_fail_pair, [(x, bad) for x in xs]))
        if iterator is not None:
            self._consume(iterator, expect_imap(xs, bad), ordered=False)

    @rule(seconds=st.sampled_from([0.05, 0.3]))
    def apply_async_sleeping(self, seconds: float) -> None:
        """A task long enough for kill_a_worker to catch it running (LOST-1)."""
        result = self._submit(lambda: self.pool.apply_async(sleep_for, (seconds,)))
        if result is not None:
            self.pending.append(Pending(result, result.job_id, Expected(value=seconds)))

    @rule(x=st.integers(0, 9))
    def apply_async_with_raising_callback(self, x: int) -> None:
        """JOB-5: the callback's exception fails its own job, nothing else."""
        result = self._submit(lambda: self.pool.apply_async(square_or_fail, (x, None), callback=_explode))
        if result is not None:
            self.pending.append(
                Pending(result, result.job_id, Expected(error=RuntimeError, message="callback"))
            )

    @precondition(lambda self: self.kind != "thread")
    @rule()
    def apply_async_unpicklable_result(self) -> None:
        """ERR-1: a result the worker cannot pickle fails its job only."""
        result = self._submit(lambda: self.pool.apply_async(unpicklable_result))
        if result is not None:
            expected = Expected(error=refpool.MaybeEncodingError, message="Error sending result")
            self.pending.append(Pending(result, result.job_id, expected))

    @rule(xs=items, bad=bad_item, buffersize=st.integers(1, 3))
    def imap_buffered(self, xs: list[int], bad: int | None, buffersize: int) -> None:
        """BUF-1: consumed at once, counting what has been drawn after each result taken."""
        drawn = [0]

        def source() -> Any:
            for x in xs:
                drawn[0] += 1
                yield (x, bad)

        iterator = self._submit(lambda: self.pool.imap(square_or_fail_pair, source(), 1, buffersize))
        if iterator is not None:

            def check_bound(taken: int) -> None:
                require(drawn[0] <= taken + buffersize, f"BUF-1: {drawn[0]} drawn, {taken} taken")

            check_bound(0)
            self._consume(iterator, expect_imap(xs, bad), ordered=True, after_each=check_bound)

    @precondition(lambda self: self.kind != "thread")
    @rule()
    def apply_async_past_its_timeout(self) -> None:
        """TIME-2: a task that sleeps past its limit fails with TaskTimeoutError."""
        result = self._submit(lambda: self.pool.apply_async(sleep_for, (30,), timeout=TASK_LIMIT))
        if result is not None:
            expected = Expected(error=refpool.TaskTimeoutError, message="ran past its timeout")
            self.pending.append(Pending(result, result.job_id, expected))

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """CANCEL-1: any pending job, at any moment; True unless it had settled."""
        if self.pending:
            pending = self.pending[data.draw(st.integers(0, len(self.pending) - 1), label="job")]
            was_ready = pending.result.ready()
            cancelled = pending.result.cancel()
            require(not (was_ready and cancelled), "CANCEL-1: a settled job was cancelled")
            pending.cancelled = pending.cancelled or cancelled

    @precondition(lambda self: self.model.state == "RUN")
    @rule()
    def wait_for_full_strength(self) -> None:
        """WORK-1: once settled, a running pool has exactly `processes` live workers."""
        deadline = time.monotonic() + WAIT
        while True:
            book = check_trace(self.trace, PROCESSES, self.maxtasks, self.depth)
            alive = [h for h in self.pool._live_core().roster.handles() if h.is_alive()]
            if len(book.live) == len(alive) == PROCESSES:
                return
            require(time.monotonic() < deadline, f"WORK-1: {len(alive)} live workers, not {PROCESSES}")
            time.sleep(0.005)  # a count settling has no event to wait on; each poll is short

    @rule(data=st.data())
    def get(self, data: st.DataObject) -> None:
        if self.pending:
            index = data.draw(st.integers(0, len(self.pending) - 1), label="job")
            self._check_outcome(self.pending.pop(index))

    @rule()
    def close(self) -> None:
        self._call("close", self.pool.close)

    @rule()
    def terminate(self) -> None:
        self._call("terminate", self.pool.terminate)

    @rule()
    def join(self) -> None:
        # join() in RUN is refused; otherwise it must return (SHUT-4): bound it.
        if self.model.state == "RUN":
            self._call("join", self.pool.join)
            return
        joiner = threading.Thread(target=self.pool.join, daemon=True)
        joiner.start()
        joiner.join(WAIT)
        require(not joiner.is_alive(), "SHUT-4: join() did not return")
        self.model.call("join")
        self._check_joined()

    @precondition(lambda self: self.kind != "thread")
    @rule(which=st.integers(0, PROCESSES - 1))
    def kill_a_worker(self, which: int) -> None:
        """LOST-1, LOST-2: a worker killed from outside, at any moment."""
        # Drawn as an index, not a pid: what Hypothesis draws must not depend on timing.
        pids = [h.pid for h in self.pool._live_core().roster.handles() if h.is_alive() and h.pid]
        if pids:
            with contextlib.suppress(ProcessLookupError):  # it may have retired meanwhile
                os.kill(pids[which % len(pids)], signal.SIGKILL)

    # --- after every step -----------------------------------------------
    @invariant()
    def state_agrees_with_the_model(self) -> None:
        if hasattr(self, "pool"):
            require(
                str(self.pool._state) == self.model.state,
                f"LIFE-2: pool in {self.pool._state}, model in {self.model.state}",
            )

    @invariant()
    def trace_keeps_the_invariants(self) -> None:
        if hasattr(self, "pool"):
            book = check_trace(self.trace, PROCESSES, self.maxtasks, self.depth)
            require(not book.violations, "; ".join(book.violations))

    def teardown(self) -> None:
        if not hasattr(self, "pool"):
            return
        self.pool.terminate()
        self.pool.join()
        for pending in self.pending:
            self._check_outcome(pending)
        self._check_joined()

    # --- helpers ----------------------------------------------------------
    def _submit(self, submit: Any) -> Any:
        refusal = self.model.call("submit")
        if refusal is None:
            return submit()
        with pytest.raises(ValueError) as caught:
            submit()
        assert str(caught.value) == refusal
        return None

    def _call(self, event: str, method: Any) -> None:
        refusal = self.model.call(event)
        if refusal is None:
            method()
        else:
            with pytest.raises(ValueError) as caught:
                method()
            assert str(caught.value) == refusal

    def _lost(self) -> set[tuple[int, int]]:
        return {key for seen in list(self.trace) if isinstance(seen, WorkerReaped) for key in seen.lost}

    def _terminated(self) -> bool:
        return any(isinstance(s, StateChanged) and str(s.after) == "TERMINATE" for s in list(self.trace))

    def _allowed(self, job_id: int, position: int | None, expected: Expected, outcome: Any) -> bool:
        """Whether `outcome` may end this job (or this imap item, at `position`)."""
        lost = {key for key in self._lost() if key[0] == job_id and position in (None, key[1])}
        if isinstance(outcome, refpool.WorkerLostError):
            return (outcome.job_id, outcome.position) in lost  # LOST-1: a task its dead worker held
        if lost:  # LOST-1: it must fail, unless another failure of the job came first
            return expected.error is not None and expected.matches(outcome)
        if isinstance(outcome, refpool.PoolTerminatedError):
            return self._terminated()  # SHUT-5
        return expected.matches(outcome)

    def _clause_for(self, job_id: int) -> str:
        """The clause a wrong ending breaks: LOST-1 if a dead worker held one of its tasks."""
        return "LOST-1" if any(key[0] == job_id for key in self._lost()) else "JOB-1"

    def _check_outcome(self, pending: Pending) -> None:
        try:
            outcome: Any = pending.result.get(WAIT)
        except multiprocessing.TimeoutError:
            require(False, f"{self._clause_for(pending.job_id)}: job {pending.job_id} never settled")
        except Exception as exc:
            outcome = exc
        if pending.cancelled:
            require(
                isinstance(outcome, refpool.JobCancelledError),
                f"CANCEL-1: cancelled job {pending.job_id} ended with {outcome!r}",
            )
            return
        clause = self._clause_for(pending.job_id)
        require(
            self._allowed(pending.job_id, None, pending.expected, outcome),
            f"{clause}: job {pending.job_id} ended with {outcome!r}, not {pending.expected}",
        )

    def _consume(
        self, iterator: Any, expected: list[Expected], ordered: bool, after_each: Any = None
    ) -> None:
        outcomes: list[Any] = []
        for _ in expected:
            try:
                outcomes.append(iterator.next(WAIT))
            except multiprocessing.TimeoutError:
                require(
                    False, f"{self._clause_for(iterator.job_id)}: imap job {iterator.job_id} stopped yielding"
                )
            except StopIteration:
                require(False, "API-4: imap stopped early")
            except Exception as exc:
                outcomes.append(exc)
            if after_each is not None:
                after_each(len(outcomes))
        with pytest.raises(StopIteration):
            iterator.next(WAIT)
        job_id = iterator.job_id
        if ordered:
            for position, (want, got) in enumerate(zip(expected, outcomes, strict=True)):
                require(
                    self._allowed(job_id, position, want, got),
                    f"JOB-1: imap item {position} of job {job_id} was {got!r}, not {want}",
                )
            return
        # Unordered: each lost task gives one WorkerLostError; the rest match the model.
        lost = {key for key in self._lost() if key[0] == job_id}
        reported = {(g.job_id, g.position) for g in outcomes if isinstance(g, refpool.WorkerLostError)}
        require(reported == lost, f"LOST-1: job {job_id} lost {sorted(lost)}, reported {sorted(reported)}")
        unmatched = list(expected)
        for got in outcomes:
            if not isinstance(got, refpool.WorkerLostError):
                match = next((want for want in unmatched if want.matches(got)), None)
                require(match is not None, f"JOB-1: imap_unordered gave {got!r}, which no item explains")
                unmatched.remove(match)  # type: ignore[arg-type]

    def _check_joined(self) -> None:
        core = self.pool._live_core()
        require(not any(h.is_alive() for h in core.roster.handles()), "SHUT-3: a worker outlived join()")
        threads = (core.worker_handler.thread, core.task_handler.thread, core.result_handler.thread)
        require(not any(t.is_alive() for t in threads), "SHUT-4: a handler thread outlived join()")
        book = check_trace(self.trace, PROCESSES, self.maxtasks, self.depth)
        problems = check_final(book)
        if self._terminated():  # killed workers are not reported one by one (SHUT-5)
            problems = [p for p in problems if not p.startswith("SHUT-3")]
        require(not problems, "; ".join(problems))


def _explode(value: object) -> None:
    raise RuntimeError(f"callback got {value!r}")


class ThreadPoolMachine(PoolMachine):
    kind = "thread"


class ForkPoolMachine(PoolMachine):
    kind = "fork"


class SpawnPoolMachine(PoolMachine):
    kind = "spawn"


# Each runs many examples: its own bound, above the global 60 s per test.
TestThreadPool = pytest.mark.timeout(600)(ThreadPoolMachine.TestCase)
TestForkPool = pytest.mark.timeout(600)(ForkPoolMachine.TestCase)
TestSpawnPool = pytest.mark.timeout(600)(SpawnPoolMachine.TestCase)
