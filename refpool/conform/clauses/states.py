"""A pool's lifecycle state as its behaviour shows it, not as its repr prints it.

- RUN: a submit is accepted and completes, and join() is refused.
- CLOSE: every kind of submit is refused with a ValueError, join() returns, and
  a job submitted in RUN (the witness, held by a gate until the check looks)
  completes with its value.
- TERMINATE: submits are refused and join() returns the same way, but the
  witness does not complete with its value: it fails, or it is still unsettled
  once join() has returned.

The stdlib refuses with ValueError("Pool not running") and ValueError("Pool is
still running"): those words are LIFE-3's check, so that a pool that refuses
otherwise (billiard's join() in RUN fails an assert) fails that clause alone.

Looking lets the witness go and calls join(), which a pool not running does: it
is the last thing a check asks of that pool's jobs. Without a held witness (a pool
already joined) CLOSE and TERMINATE look alike, and the check can only see that
the pool is not running. A pool that shows none of these states is reported
with what it did ("apply_async was accepted and returned 4").
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, NamedTuple

from .. import tasks
from ..registry import Broken
from .common import SHORT, describe, outcome, timed_out, within
from .gates import Gate

RUN, CLOSE, TERMINATE = "RUN", "CLOSE", "TERMINATE"
NOT_RUNNING = "CLOSE or TERMINATE"  # all a pool without a held witness can show
NO_STATE = "no state"  # the behaviour fits none of them
THREAD_TASK_RELEASE = 1.0  # seconds into terminate() when a thread pool's held witness is let go


class Witness:
    """A job submitted in RUN and held by a gate: whether it completes once let go tells CLOSE
    (it does) from TERMINATE (it does not). It takes one worker while held."""

    def __init__(self, pool: Any) -> None:
        self.gate = Gate()
        try:
            self.job = pool.apply_async(tasks.hold_then_report_pid, (self.gate.task("witness"),))
            self.pid = self.gate.pid_of("witness")
        except BaseException:
            self.gate.remove()
            raise
        self.in_thread = self.pid == os.getpid()

    def __enter__(self) -> Witness:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.gate.remove()

    def release(self) -> None:
        self.gate.remove()  # a missing gate is an open one, and removing twice is harmless


class Observation(NamedTuple):
    state: str  # RUN, CLOSE, TERMINATE, NOT_RUNNING or NO_STATE
    seen: str  # what the pool did, for the reason of a failed check


def submissions(pool: Any) -> list[tuple[str, Callable[[], Any]]]:
    """Every kind of submit, each ready to call."""
    return [
        ("apply", lambda: pool.apply(tasks.square, (2,))),
        ("apply_async", lambda: pool.apply_async(tasks.square, (2,))),
        ("map", lambda: pool.map(tasks.square, [1, 2])),
        ("map_async", lambda: pool.map_async(tasks.square, [1, 2])),
        ("starmap", lambda: pool.starmap(tasks.add, [(1, 2)])),
        ("starmap_async", lambda: pool.starmap_async(tasks.add, [(1, 2)])),
        ("imap", lambda: pool.imap(tasks.square, [1, 2])),
        ("imap_unordered", lambda: pool.imap_unordered(tasks.square, [1, 2])),
    ]


def require_state(pool: Any, expected: str, after: str, witness: Witness | None = None) -> None:
    """Broken, saying what the pool did, unless its behaviour after `after` shows `expected`.

    NOT_RUNNING, seen without a witness, is taken for CLOSE or TERMINATE.
    """
    try:
        seen = observed_state(pool, witness)
    except Broken as stuck:
        raise Broken(f"after {after}, looking for {expected}: {stuck}") from None
    if seen.state == expected or (seen.state == NOT_RUNNING and expected in (CLOSE, TERMINATE)):
        return
    raise Broken(f"after {after}, the pool should be in {expected}, but {seen.seen}")


def observed_state(pool: Any, witness: Witness | None) -> Observation:
    """The state the pool's behaviour shows. The pool needs a worker free beside the witness."""
    try:
        probe = within(
            "apply_async(square, (2,)), to see the state", lambda: pool.apply_async(tasks.square, (2,))
        )
    except ValueError:  # with which message, is LIFE-3's business
        return _not_running(pool, witness)
    except Exception as error:
        return Observation(NO_STATE, f"apply_async raised {describe(error)}")
    if not callable(getattr(probe, "get", None)):
        return Observation(NO_STATE, f"apply_async returned {probe!r}, neither a job nor a refusal")
    return _accepting(pool, probe, witness)


def _accepting(pool: Any, probe: Any, witness: Witness | None) -> Observation:
    if witness is not None:
        # Let go first: a pool that deals tasks in turn, busy worker or not (Ray), may have
        # queued the probe behind it, and a pool that takes join() for close() waits for it.
        witness.release()
    ok, value = outcome(
        probe, "apply_async(square, (2,))", "apply_async was accepted, and its job never settled"
    )
    seen = f"apply_async was accepted and {'returned' if ok else 'failed with'} {value!r}"
    try:
        within("join(), to see the state", pool.join)
    except Broken:
        raise
    except Exception as refused:  # which error is LIFE-3's business
        if not (ok and value == 4):
            return Observation(NO_STATE, seen)
        return Observation(RUN, f"{seen}, and join() was refused with {describe(refused)}")
    return Observation(NO_STATE, f"{seen}, and join() returned")


def _not_running(pool: Any, witness: Witness | None) -> Observation:
    for name, submit in submissions(pool):
        try:
            within(f"{name}(), to see the state", submit)
        except ValueError:
            continue
        except Exception as error:
            return Observation(
                NO_STATE, f"apply_async was refused, but {name}() raised {describe(error)}, not ValueError"
            )
        return Observation(NO_STATE, f"apply_async was refused, but {name}() was accepted")
    if witness is not None:
        witness.release()
    try:
        within("join(), to see the state", pool.join)
    except Broken:
        raise
    except Exception as refused:
        return Observation(NO_STATE, f"every submit was refused, but join() raised {describe(refused)}")
    refused_all = "every submit was refused with ValueError and join() returned"
    if witness is None:
        return Observation(NOT_RUNNING, refused_all)
    try:
        value = witness.job.get(SHORT)  # join() has returned: a closed pool has settled it
    except Exception as error:
        if timed_out(error):
            return Observation(TERMINATE, f"{refused_all}; the job held since RUN never completed")
        return Observation(TERMINATE, f"{refused_all}; the job held since RUN failed with {describe(error)}")
    if value != witness.pid:
        return Observation(NO_STATE, f"{refused_all}; the job held since RUN returned {value!r}")
    return Observation(CLOSE, f"{refused_all}, and the job held since RUN completed")


def ending(what: str, end: Callable[[], Any], witness: Witness) -> Any:
    """end()'s value, from terminate() or leaving `with pool:` while the witness is held.

    A thread cannot be stopped mid-task, so a thread pool's terminate() may wait
    for the witness's task: that task is let go a moment after end() begins.
    A process pool's witness stays held, so that its worker has to be stopped.
    """
    if witness.in_thread:
        release = threading.Timer(THREAD_TASK_RELEASE, witness.release)
        release.name, release.daemon = "conform: release the witness", True
        release.start()
    return within(what, end)
