"""The differential fuzzer: drives a target pool and the executable model with the same calls.

Hypothesis chooses a sequence of public calls (apply_async, map_async,
starmap_async, imap, imap_unordered, get, close, terminate, join); each is
made on a pool from the target's `make_pool(2)` and given to the model
(model.py), and the two must agree after every step: the same refusals
(LIFE-3), the same results and errors (API-1, API-2, API-4, JOB-1, JOB-2,
JOB-4, JOB-6), joins that return (SHUT-4) and no job left unsettled by
terminate (SHUT-5). Only the public API is used, so any pool with the
multiprocessing.pool API can be a target.

Every call on the target runs in a daemon thread with a deadline: a call that
does not return in time is a divergence, not a hang of the fuzzer. Each step
also writes the equivalent line of plain Python to an operation log, so the
shrunk failing example becomes a short script that reproduces the divergence
(`FuzzResult.script`). Shrinking is bounded in runs and seconds, and once a
divergence was a timeout, later runs wait less for each call. Hypothesis's
shrinker can leave calls that do nothing for the divergence (three close() in
a row), so a greedy pass then replays the example with each call, and each run
of identical calls, left out, and keeps every deletion after which the target
still diverges on the same clause (`drop_unneeded`).

With an example database (`--fuzz-db DIR` or `--fuzz-db redis://HOST:PORT`),
divergences are saved under a key made of the target's name, and every run
replays them before it generates anything: a divergence one CI machine finds,
every machine sharing the database finds again at once.

A target can still take the process down (a crash, or a hang that holds the
GIL), so `fuzz_in_subprocess` runs `python -m refpool.conform.fuzz TARGET`
in a session of its own, with a wall-clock deadline.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar, cast

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from .bounded import TimedOut, call_within
from .fuzz_db import TargetExamples, example_database
from .model import (
    ApiModel,
    Failed,
    expect_apply,
    outcome,
    sleep_for,
    square_or_fail,
    square_or_fail_pair,
    unsettled_after,
    want_map,
    wanted,
)
from .registry import PoolFactory
from .shrink import drop_unneeded
from .targets import TargetUnavailable, parse

__all__ = [
    "FUZZ_MARK", "Call", "FuzzResult", "fuzz", "fuzz_in_subprocess", "main", "minimize",
]  # fmt: skip

FUZZ_MARK = "FUZZ "
PROCESSES = 2
SLOW_TASK = 0.2  # seconds: a task that cannot have settled when get(GET_TOO_SOON) gives up
GET_TOO_SOON = 0.05
SHORT_STEPS = 5  # calls per example in the first fifth of the examples
SHRINK_CALL_TIMEOUT = 2.0  # seconds per call once a divergence was a timeout (each shrink run waits)
GENERATE = [Phase.generate, Phase.shrink]
UNSEEDED = 0  # the seed of a run given none
HYPOTHESIS_SHRINK_SHARE = 0.75  # of the shrink budget; the greedy pass has the rest, or what is left

T = TypeVar("T")

items = st.lists(st.integers(0, 9), max_size=8)
bad_item = st.one_of(st.none(), st.integers(0, 9))
chunksizes = st.one_of(st.none(), st.integers(1, 3))

# The names a reproducer script may use from model.py, imported only if used.
HELPERS = ("Failed", "TERMINATED", "drain", "join_within", "outcome", "refused", "sleep_for",
           "square_or_fail", "square_or_fail_pair", "unsettled_after")  # fmt: skip


@dataclass(frozen=True)
class FuzzResult:
    target: str
    status: str  # PASS, FAIL (a divergence), HANG (the fuzzer itself hung), CRASH or SKIP
    examples: int  # examples run up to and including the first divergence (all of them if none)
    divergence: bool  # the target diverged from the model (or made the fuzzer hang or crash)
    clause: str  # the spec clause the divergence breaks; "" if none
    message: str  # starts with the clause ID for a divergence; otherwise says what happened
    script: str  # a runnable reproducer for a divergence; "" otherwise
    seconds: float
    extension: bool = False  # the clause is one where refpool differs from CPython on purpose
    flaky: bool = False  # the shrunk example did not fail again when replayed (timing)
    shrink_runs: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.as_dict())

    @classmethod
    def from_json(cls, text: str) -> FuzzResult:
        return cls(**json.loads(text))


class Divergence(Exception):
    """The target did not do what the model says; the message starts with the clause ID."""

    def __init__(self, clause: str, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.clause = clause
        self.message = message
        self.timed_out = timed_out


class _ShrinkBudgetSpent(BaseException):
    """Stops Hypothesis's shrinking (a BaseException, so Hypothesis does not take it for a failure)."""


@dataclass(frozen=True)
class Call:
    """One step of an example: a method of PoolMachine and its arguments, so it can be made again."""

    method: str
    arguments: tuple[tuple[str, Any], ...]

    def make(self, machine: PoolMachine) -> None:
        getattr(machine, self.method)(**dict(self.arguments))


@dataclass
class _Seen:
    clause: str
    message: str
    log: list[str]
    timed_out: bool
    calls: list[Call]


@dataclass
class _Run:
    """One fuzz() call: its settings, and the divergences its examples found."""

    factory: PoolFactory
    call_timeout: float
    shrink_seconds: float
    max_shrinks: int
    progress: Callable[[str], None] | None
    extensions: bool = True  # check the "(refpool)" clauses too (SHUT-5 after terminate)
    runs: int = 0
    stopped: bool = False  # Hypothesis's share of the shrinking budget is spent
    replaying: bool = False  # the greedy pass runs examples itself, on its own budget
    first_failure_run: int = 0
    first_failure_at: float = 0.0
    seen: list[_Seen] = field(default_factory=list)

    def shrink_deadline(self, share: float = 1.0) -> float:
        """When shrinking must stop (time.monotonic()): `share` of the budget after the first divergence."""
        return self.first_failure_at + share * self.shrink_seconds

    def timeout(self) -> float:
        if any(s.timed_out for s in self.seen):
            return min(self.call_timeout, SHRINK_CALL_TIMEOUT)
        return self.call_timeout

    def say(self, what: str) -> None:
        if self.progress is not None:
            self.progress(what)


@dataclass
class _Pending:
    name: str  # the job's variable in the reproducer script
    job: Any
    want: Any  # what model.outcome() must return
    clause: str  # what a wrong ending breaks
    seen: list[Any] | None = None  # what its callback was called with (JOB-4)


class _NotReplayable(Exception):
    """A shortened example that cannot be made: it gets a job that it no longer submits."""


RuleMethod = TypeVar("RuleMethod", bound=Callable[..., None])


def recorded(method: RuleMethod) -> RuleMethod:
    """A rule that notes itself in machine.calls, so that the greedy pass can replay the example."""

    @functools.wraps(method)
    def record(machine: PoolMachine, **arguments: Any) -> None:
        machine.calls.append(Call(method.__name__, tuple(arguments.items())))
        method(machine, **arguments)

    return cast(RuleMethod, record)


# Submissions to a pool that is not running are refused (LIFE-3); a few per
# example check that, more would crowd out the steps that do something.
submits = precondition(lambda self: self.model.state == "RUN" or self.refused_submits < 2)
# Likewise close() and join() once the pool is no longer running (LIFE-4).
ends = precondition(lambda self: self.model.state == "RUN" or self.repeated_ends < 2)


class PoolMachine(RuleBasedStateMachine):
    """A target pool beside the model; rules named like the Pool methods."""

    run: _Run  # set on the subclass that fuzz() makes

    def __init__(self) -> None:
        super().__init__()
        run = self.run
        run.runs += 1
        if not run.replaying and (
            run.stopped
            or (
                run.seen
                and (
                    run.runs - run.first_failure_run > run.max_shrinks
                    or time.monotonic() > run.shrink_deadline(HYPOTHESIS_SHRINK_SHARE)
                )
            )
        ):
            run.stopped = True
            raise _ShrinkBudgetSpent
        run.say(f"replay {run.runs}" if run.replaying else f"example {run.runs}")
        self.model = ApiModel()
        self.log: list[str] = []
        self.calls: list[Call] = []  # the steps so far, for the greedy pass to replay
        self.pending: list[_Pending] = []
        self.jobs = 0
        self.refused_submits = 0
        self.repeated_ends = 0
        self.diverged = False
        self.pool: Any = self._bounded("make_pool(2)", "LIFE-1", lambda: run.factory(PROCESSES))

    # --- the caller's calls ---------------------------------------------
    @submits
    @rule(x=st.integers(0, 9), bad=bad_item)
    @recorded
    def apply_async(self, x: int, bad: int | None) -> None:
        call = f"pool.apply_async(square_or_fail, {(x, bad)!r})"
        job = self._submit(call, lambda: self.pool.apply_async(square_or_fail, (x, bad)))
        if job is not None:
            self._pending(job, wanted(expect_apply(x, bad)), "API-1")

    @submits
    @rule(x=st.integers(0, 9), bad=bad_item)
    @recorded
    def apply_async_with_callback(self, x: int, bad: int | None) -> None:
        """JOB-4: the callback runs once, with the value, before get() returns."""
        seen: list[Any] = []
        name = f"seen{self.jobs + 1}"
        call = f"pool.apply_async(square_or_fail, {(x, bad)!r}, callback={name}.append)"
        self._note(f"{name} = []")
        job = self._submit(
            call, lambda: self.pool.apply_async(square_or_fail, (x, bad), callback=seen.append)
        )
        if job is not None:
            self._pending(job, wanted(expect_apply(x, bad)), "API-1", seen)

    @submits
    @rule(xs=items, bad=bad_item, chunksize=chunksizes)
    @recorded
    def map_async(self, xs: list[int], bad: int | None, chunksize: int | None) -> None:
        args = [(x, bad) for x in xs]
        call = f"pool.map_async(square_or_fail_pair, {args!r}{_chunks(chunksize)})"
        job = self._submit(call, lambda: self.pool.map_async(square_or_fail_pair, args, chunksize))
        if job is not None:
            want = want_map(xs, bad)
            self._pending(job, want, "JOB-6" if isinstance(want, Failed) else "API-2")

    @submits
    @rule(xs=items, bad=bad_item, chunksize=chunksizes)
    @recorded
    def starmap_async(self, xs: list[int], bad: int | None, chunksize: int | None) -> None:
        args = [(x, bad) for x in xs]
        call = f"pool.starmap_async(square_or_fail, {args!r}{_chunks(chunksize)})"
        job = self._submit(call, lambda: self.pool.starmap_async(square_or_fail, args, chunksize))
        if job is not None:
            want = want_map(xs, bad)
            self._pending(job, want, "JOB-6" if isinstance(want, Failed) else "API-2")

    @submits
    @rule(xs=items, bad=bad_item)
    @recorded
    def imap(self, xs: list[int], bad: int | None) -> None:
        self._imap("imap", xs, bad, ordered=True)

    @submits
    @rule(xs=items, bad=bad_item)
    @recorded
    def imap_unordered(self, xs: list[int], bad: int | None) -> None:
        self._imap("imap_unordered", xs, bad, ordered=False)

    @submits
    @rule()
    @recorded
    def get_with_timeout(self) -> None:
        """JOB-2: get(timeout) raises multiprocessing.TimeoutError while the job is unsettled."""
        call = f"pool.apply_async(sleep_for, ({SLOW_TASK},))"
        job = self._submit(call, lambda: self.pool.apply_async(sleep_for, (SLOW_TASK,)))
        if job is None:
            return
        name = self._pending(job, SLOW_TASK, "API-1").name
        self._note(f"assert not {name}.ready()")
        ready = self._bounded(f"{name}.ready()", "JOB-2", job.ready)
        if ready:
            self._diverge(
                "JOB-2", f"JOB-2: {name}.ready() was True at once, for a task that sleeps {SLOW_TASK} s"
            )
        self._note(f"assert unsettled_after({name}, {GET_TOO_SOON})")
        if not self._bounded(
            f"{name}.get({GET_TOO_SOON})", "JOB-2", lambda: unsettled_after(job, GET_TOO_SOON)
        ):
            self._diverge(
                "JOB-2",
                f"JOB-2: {name}.get(timeout={GET_TOO_SOON}) did not raise multiprocessing.TimeoutError"
                f" for a task that sleeps {SLOW_TASK} s",
            )

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def get(self, data: st.DataObject) -> None:
        self.get_job(data.draw(st.integers(0, len(self.pending) - 1), label="job"))

    def get_job(self, index: int) -> None:
        """The rule `get` once its job is drawn: what the greedy pass replays."""
        if index >= len(self.pending):
            raise _NotReplayable(f"get of job {index + 1} of {len(self.pending)}")
        self.calls.append(Call("get_job", (("index", index),)))
        self._check_outcome(self.pending.pop(index))

    @ends
    @rule()
    @recorded
    def close(self) -> None:
        clause = "LIFE-2" if self.model.state == "RUN" else "LIFE-4"
        self._lifecycle("close", self.pool.close, clause)

    @rule()  # always possible (LIFE-4), so that a step can always be taken
    @recorded
    def terminate(self) -> None:
        clause = "LIFE-2" if self.model.state == "RUN" else "LIFE-4"
        self._lifecycle("terminate", self.pool.terminate, clause)

    @ends
    @rule()
    @recorded
    def join(self) -> None:
        if self.model.state == "RUN":
            self._lifecycle("join", self.pool.join, "LIFE-3")
            return
        self._join()

    def teardown(self) -> None:
        if not hasattr(self, "pool"):
            return
        try:
            if not self.diverged:
                self._finish()
        finally:
            if self.diverged:  # just let go of the pool: bounded, unchecked
                for end in (self.pool.terminate, self.pool.join):
                    worker = threading.Thread(target=_quietly(end), daemon=True)
                    worker.start()
                    worker.join(min(1.0, self.run.timeout()))

    def _finish(self) -> None:
        """Every job ends as the model says; terminate() and join() return (SHUT-4, SHUT-5)."""
        if self.model.state != "TERMINATE":
            while self.pending:
                self._check_outcome(self.pending.pop(0))
            self._lifecycle(
                "terminate", self.pool.terminate, "LIFE-2" if self.model.state == "RUN" else "LIFE-4"
            )
        self._join()
        while self.pending:  # jobs that were running at terminate(): settled by now (SHUT-5)
            self._check_outcome(self.pending.pop(0))

    # --- helpers ----------------------------------------------------------
    def _note(self, line: str) -> None:
        self.log.append(line)
        self.run.say(line.replace("\n", " "))

    def _diverge(self, clause: str, message: str, timed_out: bool = False) -> NoReturn:
        self.diverged = True
        run = self.run
        if not run.seen:
            run.first_failure_run = run.runs
            run.first_failure_at = time.monotonic()
        run.seen.append(_Seen(clause, message, list(self.log), timed_out, list(self.calls)))
        raise Divergence(clause, message, timed_out)

    def _bounded(self, what: str, clause: str, call: Callable[[], T], timeout: float | None = None) -> T:
        """call() in a daemon thread; a divergence of `clause` if it does not return in time."""
        limit = self.run.timeout() if timeout is None else timeout
        try:
            return call_within(call, limit, f"fuzz: {what}")
        except TimedOut:
            self._diverge(clause, f"{clause}: {what} did not return within {limit:g} s", timed_out=True)
            raise  # _diverge raises; this is for the type checker

    def _submit(self, call: str, submit: Callable[[], Any]) -> Any:
        """A job or iterator if the model accepts the submission, None if it must be refused."""
        state = self.model.state
        refusal = self.model.call("submit")
        if refusal is not None:
            self.refused_submits += 1
            self._note(f"with refused({refusal!r}):\n    {call}")
            self._refusal(call, submit, refusal, state)
            return None
        self._note(f"job{self.jobs + 1} = {call}")
        try:
            return self._bounded(call, "LIFE-2", submit)
        except Divergence:
            raise
        except Exception as error:
            self._diverge("LIFE-2", f"LIFE-2: {call} in RUN raised {error!r}; a running pool accepts it")

    def _pending(self, job: Any, want: Any, clause: str, seen: list[Any] | None = None) -> _Pending:
        self.jobs += 1
        name = f"job{self.jobs}"
        pending = _Pending(name, job, want, clause, seen)
        self.pending.append(pending)
        return pending

    def _refusal(self, call: str, method: Callable[[], Any], refusal: str, state: str) -> None:
        """LIFE-3: `method()` must raise ValueError(refusal) and change nothing."""
        try:
            self._bounded(call, "LIFE-3", method)
        except Divergence:
            raise
        except ValueError as error:
            if str(error) == refusal:
                return
            self._diverge(
                "LIFE-3",
                f"LIFE-3: {call} in {state} raised ValueError({str(error)!r}), not ValueError({refusal!r})",
            )
        except Exception as error:
            self._diverge(
                "LIFE-3", f"LIFE-3: {call} in {state} raised {error!r}, not ValueError({refusal!r})"
            )
        self._diverge(
            "LIFE-3", f"LIFE-3: {call} in {state} was accepted, not refused with ValueError({refusal!r})"
        )

    def _lifecycle(self, event: str, method: Callable[[], Any], clause: str) -> None:
        state = self.model.state
        if state != "RUN":
            self.repeated_ends += 1
        refusal = self.model.call(event)
        if refusal is not None:
            self._note(f"with refused({refusal!r}):\n    pool.{event}()")
            self._refusal(f"pool.{event}()", method, refusal, state)
            return
        self._note(f"pool.{event}()")
        try:
            self._bounded(f"pool.{event}()", "SHUT-4" if event == "terminate" else clause, method)
        except Divergence:
            raise
        except Exception as error:
            self._diverge(clause, f"{clause}: pool.{event}() in {state} raised {error!r}; it must return")

    def _join(self) -> None:
        """SHUT-4: join() in CLOSE or TERMINATE returns; then every job has settled (JOB-1, SHUT-5)."""
        state = self.model.state
        self.repeated_ends += 1
        self.model.call("join")
        self._note("join_within(pool, TIMEOUT)")
        try:
            self._bounded("pool.join()", "SHUT-4", self.pool.join)
        except Divergence:
            raise
        except Exception as error:
            self._diverge("LIFE-2", f"LIFE-2: pool.join() in {state} raised {error!r}; it must return")
        clause = "SHUT-5" if state == "TERMINATE" else "JOB-1"
        if state == "TERMINATE" and not self.run.extensions:
            return  # CPython leaves jobs unsettled by terminate(); not checked without extensions
        for pending in self.pending:
            self._note(f"assert {pending.name}.ready()")
            if not self._bounded(f"{pending.name}.ready()", clause, pending.job.ready):
                after = "terminate() and join()" if state == "TERMINATE" else "close() and join()"
                self._diverge(clause, f"{clause}: {pending.name} is still unsettled after {after}")

    def _check_outcome(self, pending: _Pending) -> None:
        name, want = pending.name, pending.want
        terminated = self.model.state == "TERMINATE"
        if terminated and not self.run.extensions:  # CPython may leave it unsettled forever
            self._note(
                f"if {name}.ready():  # else left unsettled by terminate(), as CPython may\n"
                f"    assert outcome({name}.get, TIMEOUT) in ({want!r}, TERMINATED)"
            )
            if not self._bounded(f"{name}.ready()", "JOB-2", pending.job.ready):
                return
        elif terminated:  # SHUT-5: a job unsettled at terminate() fails with PoolTerminatedError
            self._note(f"assert outcome({name}.get, TIMEOUT) in ({want!r}, TERMINATED)")
        else:
            self._note(f"assert outcome({name}.get, TIMEOUT) == {want!r}")
        limit = self.run.timeout()
        try:
            got = self._bounded(
                f"{name}.get(timeout={limit:g})",
                pending.clause,
                lambda: outcome(pending.job.get, limit),
                limit + max(1.0, limit / 2),
            )
        except Divergence:
            raise
        except Exception:  # multiprocessing.TimeoutError: the only exception outcome() lets through
            clause = "SHUT-5" if terminated else "JOB-1"
            after = " after terminate()" if terminated else ""
            self._diverge(
                clause, f"{clause}: {name} did not settle within {limit:g} s{after}", timed_out=True
            )
        allowed = [want, Failed("PoolTerminatedError")] if terminated else [want]
        if got not in allowed:
            clause = "SHUT-5" if terminated and isinstance(got, Failed) else pending.clause
            shown = " or ".join(repr(a) for a in allowed)
            self._diverge(clause, f"{clause}: {name} ended with {got!r}, not {shown}")
        if pending.seen is not None and not (terminated and got == Failed("PoolTerminatedError")):
            calls = [want] if not isinstance(want, Failed) else []
            seen_name = "seen" + name.removeprefix("job")
            self._note(f"assert {seen_name} == {calls!r}")
            if pending.seen != calls:
                self._diverge(
                    "JOB-4", f"JOB-4: the callback of {name} was called with {pending.seen!r}, not {calls!r}"
                )

    def _imap(self, method: str, xs: list[int], bad: int | None, ordered: bool) -> None:
        args = [(x, bad) for x in xs]
        call = f"pool.{method}(square_or_fail_pair, {args!r})"
        state = self.model.state
        refusal = self.model.call("submit")
        if refusal is not None:
            self.refused_submits += 1
            self._note(f"with refused({refusal!r}):\n    {call}")
            self._refusal(call, lambda: getattr(self.pool, method)(square_or_fail_pair, args), refusal, state)
            return
        want = [wanted(expect_apply(x, bad)) for x in xs]
        if ordered:
            self._note(f"assert drain({call}, TIMEOUT) == {want!r}")
        else:
            want.sort(key=repr)
            self._note(f"assert sorted(drain({call}, TIMEOUT), key=repr) == {want!r}")
        try:
            iterator = self._bounded(
                call, "LIFE-2", lambda: getattr(self.pool, method)(square_or_fail_pair, args)
            )
        except Divergence:
            raise
        except Exception as error:
            self._diverge("LIFE-2", f"LIFE-2: {call} in RUN raised {error!r}; a running pool accepts it")
        got: list[Any] = []
        limit = self.run.timeout()
        while True:
            try:
                got.append(
                    self._bounded(
                        f"next(timeout={limit:g}) on {method}",
                        "JOB-1",
                        lambda: outcome(iterator.next, limit),
                        limit + max(1.0, limit / 2),
                    )
                )
            except StopIteration:
                break
            except Divergence:
                raise
            except Exception:
                self._diverge(
                    "JOB-1", f"JOB-1: {call} yielded {got!r}, then nothing within {limit:g} s", timed_out=True
                )
            if len(got) > len(xs):
                self._diverge("API-4", f"API-4: {call} yielded more items than it was given: {got!r}")
        if not ordered:
            got.sort(key=repr)
        if got != want:
            self._diverge("API-4", f"API-4: {call} yielded {got!r}, not {want!r}")


def _chunks(chunksize: int | None) -> str:
    return "" if chunksize is None else f", chunksize={chunksize}"


def _quietly(call: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        with contextlib.suppress(BaseException):
            call()

    return run


# --- the reproducer script ----------------------------------------------------


def render_script(reference: str, seen: _Seen, call_timeout: float) -> str:
    """The shrunk example as a script: it fails (non-zero exit) where the target diverged."""
    module, _, attribute = reference.partition(":")
    body = "\n".join(seen.log)
    used = [name for name in HELPERS if re.search(rf"\b{name}\b", body)]
    if "join_within" not in used:
        used.append("join_within")
        used.sort()
    if "." in attribute:
        target_import = f"import {module} as target_module\n\nmake_pool = target_module.{attribute}"
    else:
        target_import = f"from {module} import {attribute} as make_pool"
    message = seen.message.replace('"""', "'''")
    lines = [
        f'"""Reproduces a divergence of {reference} from spec/pool.md (found by refpool.conform.fuzz).',
        "",
        message,
        '"""',
        "",
        target_import,
        "",
        f"from refpool.conform.model import {', '.join(used)}",
        "",
        f"TIMEOUT = {call_timeout:g}  # seconds: a bound on each blocking call",
        "",
        f"pool = make_pool({PROCESSES})",
        *seen.log,
        f"# ^ here the target diverges from the spec: {seen.message}",
        "",
        "pool.terminate()",
        "join_within(pool, TIMEOUT)",
        'print("no divergence: the target did what the spec says")',
        "",
    ]
    return "\n".join(lines)


# --- the greedy pass: no call the divergence does not need (shrink.py) ---------


def _drop_unneeded_calls(machine: type[PoolMachine], seen: _Seen) -> _Seen:
    """The greedy pass on the shrunk divergence: the same clause, with only the calls it needs.

    Each try makes the shorter example on a new pool beside a new model (_replay). It
    runs in what is left of the shrinking budget, or a quarter of it if less is left.
    """
    run = machine.run
    least = run.shrink_seconds * (1 - HYPOTHESIS_SHRINK_SHARE)
    deadline = max(run.shrink_deadline(), time.monotonic() + least)
    shortest = seen

    def still_diverges(calls: list[Call]) -> bool:
        nonlocal shortest
        again = _replay(machine, calls)
        if again is None or again.clause != seen.clause:
            return False
        shortest = again
        return True

    replaying, run.replaying = run.replaying, True
    run.say("leaving out calls the divergence does not need")
    try:
        drop_unneeded(seen.calls, still_diverges, lambda: time.monotonic() > deadline)
    finally:
        run.replaying = replaying
    return shortest


def _replay(machine: type[PoolMachine], calls: list[Call]) -> _Seen | None:
    """The divergence the calls show on a new pool beside a new model, or None."""
    run = machine.run
    found = len(run.seen)
    try:
        replay = machine()
        try:
            for call in calls:
                call.make(replay)
        except _NotReplayable:
            replay.diverged = True  # not a divergence: let go of the pool without checking it
            return None
        finally:
            replay.teardown()
    except Divergence:
        pass
    return run.seen[-1] if len(run.seen) > found else None


# --- running it ---------------------------------------------------------------


def fuzz(
    target_spec: str,
    examples: int,
    call_timeout: float = 10,
    seed: int | None = None,
    *,
    steps: int = 20,
    shrink_seconds: float = 60,
    max_shrinks: int = 200,
    progress: Callable[[str], None] | None = None,
    extensions: bool = True,
    fuzz_db: str | None = None,
) -> FuzzResult:
    """Run up to `examples` call sequences of up to `steps` calls on the target beside the model.

    The same examples each run (seed 0) unless another seed is given. The first
    divergence is shrunk for at most `shrink_seconds` and `max_shrinks` runs.
    With extensions=False, jobs that terminate() leaves unsettled are not held
    against the target (SHUT-5 is a refpool extension; CPython leaves them).
    With fuzz_db (a directory or redis://HOST:PORT, see example_database), the
    divergences saved there for this target are replayed first, and new ones saved.
    """
    started = time.monotonic()
    loaded = _load(target_spec, started)
    if isinstance(loaded, FuzzResult):
        return loaded
    reference, factory = loaded
    database = None if fuzz_db is None else TargetExamples(example_database(fuzz_db), target_spec)
    run = _Run(factory, call_timeout, shrink_seconds, max_shrinks, progress, extensions)
    machine = _machine_for(run)

    # Hypothesis keys the database by a digest of the source of what it is given. A
    # function's source is found the same way on every Python; a class made by type()
    # is not (3.13 no longer finds one), and the key must be the same on every machine.
    def new_machine() -> PoolMachine:
        return machine()

    # @seed, not derandomize (which Hypothesis refuses beside a database) nor pytest's
    # global seed (with which it uses none): the same examples each run, database or not.
    hypothesis.seed(UNSEEDED if seed is None else seed)(new_machine)
    flaky = False
    # The saved divergences first, with the longest steps, so that each is replayed whole.
    # Then short sequences: most divergences show in a few calls, and a short failing
    # example shrinks in a few runs even when each run waits on a timeout.
    short = min(examples, max(1, examples // 5))
    passes = [(max(1, examples), steps, [Phase.reuse, Phase.shrink])] if database is not None else []
    passes += [(short, min(steps, SHORT_STEPS), GENERATE), (examples - short, steps, GENERATE)]
    for count, length, phases in passes:
        if count <= 0 or run.seen:
            continue
        options = settings(
            max_examples=count,
            stateful_step_count=length,
            deadline=None,
            database=database,
            phases=phases,
            report_multiple_bugs=False,
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        try:
            # cast: older Hypothesis releases leave this function untyped.
            cast(Callable[..., None], run_state_machine_as_test)(new_machine, settings=options)
        except (Divergence, _ShrinkBudgetSpent):
            pass
        except unittest.SkipTest:  # Hypothesis ran no example: the database held none for the target
            pass
        except Flaky:
            flaky = not run.stopped  # a replay stopped by the budget is not the target's flakiness
        except Exception:
            if not run.seen:
                raise  # a bug of the fuzzer, not a divergence of the target
            flaky = not run.stopped
    if not run.seen:
        return FuzzResult(target_spec, "PASS", run.runs, False, "", "", "", time.monotonic() - started)
    best = min(reversed(run.seen), key=lambda s: (len(s.log), len("\n".join(s.log))))
    return _failed(target_spec, reference, run, _drop_unneeded_calls(machine, best), started, flaky)


def minimize(
    target_spec: str, calls: Sequence[Call], call_timeout: float = 10, *, shrink_seconds: float = 60
) -> FuzzResult:
    """The divergence `calls` show on the target, with every call it does not need left out
    (the greedy pass alone, on an example given rather than found); PASS if they show none."""
    started = time.monotonic()
    loaded = _load(target_spec, started)
    if isinstance(loaded, FuzzResult):
        return loaded
    reference, factory = loaded
    run = _Run(factory, call_timeout, shrink_seconds, 0, None)
    machine = _machine_for(run)
    run.replaying = True
    seen = _replay(machine, list(calls))
    if seen is None:
        return FuzzResult(target_spec, "PASS", 1, False, "", "", "", time.monotonic() - started)
    return _failed(target_spec, reference, run, _drop_unneeded_calls(machine, seen), started)


def _load(target_spec: str, started: float) -> tuple[str, PoolFactory] | FuzzResult:
    """The target's module:attribute and pool factory, or the SKIP result that says why it
    cannot be loaded."""
    try:
        target = parse(target_spec)
        return target.reference, target.load()
    except TargetUnavailable as error:
        return FuzzResult(target_spec, "SKIP", 0, False, "", str(error), "", time.monotonic() - started)


def _machine_for(run: _Run) -> type[PoolMachine]:
    """PoolMachine for one run: Hypothesis makes machines with no arguments, so the run is on the class."""
    return cast(type[PoolMachine], type("PoolMachine", (PoolMachine,), {"run": run}))


def _failed(
    target_spec: str, reference: str, run: _Run, seen: _Seen, started: float, flaky: bool = False
) -> FuzzResult:
    return FuzzResult(
        target_spec,
        "FAIL",
        run.first_failure_run,
        True,
        seen.clause,
        seen.message,
        render_script(reference, seen, run.call_timeout),
        time.monotonic() - started,
        extension=is_extension(seen.clause),
        flaky=flaky,
        shrink_runs=run.runs - run.first_failure_run,
    )


def is_extension(clause: str) -> bool:
    """Whether the spec marks the clause "(refpool)": behaviour refpool chose on purpose
    differently from CPython. The checks' registry is the one list of them (a test holds it to
    spec/pool.md's marks), so that the fuzzer's label cannot drift from the table's."""
    from . import clauses, control_clauses  # noqa: F401  (register the checks)
    from .registry import CHECKS

    check = CHECKS.get(clause)
    return check is not None and check.extension


def fuzz_in_subprocess(
    target_spec: str,
    examples: int,
    deadline: float,
    *,
    call_timeout: float = 10,
    seed: int | None = None,
    shrink_seconds: float | None = None,
    fuzz_db: str | None = None,
    extensions: bool = True,
) -> FuzzResult:
    """fuzz() in `python -m refpool.conform.fuzz`, in a session of its own, ended at `deadline` seconds."""
    started = time.monotonic()
    shrink = deadline / 4 if shrink_seconds is None else shrink_seconds
    command = [sys.executable, "-m", "refpool.conform.fuzz", target_spec, "--examples", str(examples),
               "--timeout", str(call_timeout), "--shrink-seconds", str(shrink)]  # fmt: skip
    if seed is not None:
        command += ["--seed", str(seed)]
    if fuzz_db is not None:
        command += ["--fuzz-db", fuzz_db]
    if not extensions:
        command.append("--no-extensions")
    # Files, not pipes: a leftover worker holding a pipe open must not keep us waiting.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, text=True, start_new_session=True
        )
        try:
            process.wait(timeout=deadline)
            hung = False
        except subprocess.TimeoutExpired:
            hung = True
        _kill_session(process.pid)
        process.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    seconds = time.monotonic() - started
    examples_seen = sum(1 for line in stderr.splitlines() if line.startswith("step: example "))
    if hung:
        return FuzzResult(
            target_spec, "HANG", examples_seen, True, "",
            f"the fuzzer itself hung (no answer in {deadline:g} s) while: {_last_step(stderr)}", "", seconds,
        )  # fmt: skip
    for line in stdout.splitlines():
        if line.startswith(FUZZ_MARK):
            result = FuzzResult.from_json(line[len(FUZZ_MARK) :])
            return dataclasses.replace(result, seconds=seconds)
    code = process.returncode
    how = f"exit code {code}" if code >= 0 else signal.Signals(-code).name
    tail = stderr.strip().splitlines()[-1:] or [""]
    return FuzzResult(
        target_spec, "CRASH", examples_seen, True, "",
        f"the fuzzer's process died ({how}) while: {_last_step(stderr)} {tail[0]}".rstrip(), "", seconds,
    )  # fmt: skip


def _last_step(stderr: str) -> str:
    steps = [line[len("step: ") :] for line in stderr.splitlines() if line.startswith("step: ")]
    return steps[-1] if steps else "starting"


def _kill_session(session: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(session, signal.SIGKILL)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m refpool.conform.fuzz", description=__doc__.split("\n")[0]
    )
    parser.add_argument("target", help="a built-in target name or module:attribute")
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=10, help="seconds allowed for each call")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--shrink-seconds", type=float, default=60)
    parser.add_argument("--no-extensions", action="store_true", help="do not check SHUT-5 after terminate()")
    parser.add_argument(
        "--fuzz-db",
        metavar="DIR|redis://HOST:PORT",
        help="replay the divergences saved here first; save new ones",
    )
    args = parser.parse_args(argv)
    if args.fuzz_db is not None:
        try:
            example_database(args.fuzz_db)
        except ValueError as error:
            parser.error(str(error))

    def progress(what: str) -> None:
        print(f"step: {what}", file=sys.stderr, flush=True)

    try:
        result = fuzz(
            args.target, args.examples, args.timeout, args.seed,
            steps=args.steps, shrink_seconds=args.shrink_seconds, progress=progress,
            extensions=not args.no_extensions, fuzz_db=args.fuzz_db,
        )  # fmt: skip
    except Exception as error:  # the fuzzer's own failure: say so rather than crash without a line
        result = FuzzResult(args.target, "CRASH", 0, True, "", f"the fuzzer failed: {error!r}", "", 0.0)
    sys.stdout.write(FUZZ_MARK + result.to_json() + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
