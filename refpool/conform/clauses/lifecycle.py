"""The checks of the lifecycle clauses (LIFE): states, their transitions, and the errors of the
events that are not among them, all seen through the pool's behaviour (states.py)."""

from __future__ import annotations

import contextlib
import gc
import threading
import warnings
from typing import Any

from .. import tasks
from ..registry import Broken, PoolFactory, require, step
from .common import WAIT, clause, new_threads, outcome, raises, running, value_of, wait_until, within
from .gates import Gate
from .proc import child_processes, have_proc
from .states import CLOSE, RUN, TERMINATE, Witness, ending, require_state, submissions


@clause("LIFE-1", "a constructed pool is in RUN; close() and terminate() lead to CLOSE and TERMINATE")
def life_1(make_pool: PoolFactory) -> None:
    # How the states print is API-9's: here they are what the pool does.
    with running(make_pool(2)) as pool, Witness(pool) as witness:
        require_state(pool, RUN, "construction")
        within("close()", pool.close)
        require_state(pool, CLOSE, "close()", witness)
    with running(make_pool(2)) as pool, Witness(pool) as witness:
        ending("terminate()", pool.terminate, witness)
        require_state(pool, TERMINATE, "terminate()", witness)


@clause("LIFE-2", "the legal transitions, as the public API shows them")
def life_2(make_pool: PoolFactory) -> None:
    # RUN -SUBMIT-> RUN -CLOSE-> CLOSE -CLOSE-> CLOSE -JOIN-> CLOSE -TERMINATE-> TERMINATE
    with running(make_pool(2)) as pool, contextlib.ExitStack() as stack:
        value_of(pool.apply_async(tasks.square, (3,)), "apply_async(square, (3,))")
        # Seen before the witness is held: a pool that deals tasks in turn (Ray) could queue
        # the look behind it.
        require_state(pool, RUN, "a submit in RUN")
        witness = stack.enter_context(Witness(pool))
        within("close() in RUN", pool.close)
        within("close() in CLOSE", pool.close)
        require_state(pool, CLOSE, "close() in RUN, then in CLOSE", witness)
        # Looking for CLOSE let the witness go and joined the pool: this join() is its second.
        within("join() in CLOSE", pool.join)
        require_state(pool, CLOSE, "join() in CLOSE")
        within("terminate() in CLOSE, after join()", pool.terminate)
        require_state(pool, TERMINATE, "terminate() in CLOSE, after join()")
    # CLOSE -TERMINATE-> TERMINATE with a job still running: it is stopped, not completed.
    with running(make_pool(2)) as pool, Witness(pool) as witness:
        within("close() in RUN", pool.close)
        ending("terminate() in CLOSE", pool.terminate, witness)
        require_state(pool, TERMINATE, "close(), then terminate() in CLOSE", witness)
    # RUN -TERMINATE-> TERMINATE -CLOSE, TERMINATE, JOIN-> TERMINATE
    with running(make_pool(2)) as pool, Witness(pool) as witness:
        ending("terminate() in RUN", pool.terminate, witness)
        within("close() in TERMINATE", pool.close)
        within("terminate() in TERMINATE", pool.terminate)
        require_state(pool, TERMINATE, "terminate(), then close() and terminate() in TERMINATE", witness)
        within("join() in TERMINATE", pool.join)
        require_state(pool, TERMINATE, "join() in TERMINATE")


@clause("LIFE-3", "illegal events raise ValueError: 'Pool not running', 'Pool is still running'")
def life_3(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool, Witness(pool) as witness:
        raises(pool.join, ValueError, "join() in RUN", "Pool is still running")
        require_state(pool, RUN, "the refused join()")
        within("close()", pool.close)
        for name, submit in submissions(pool):
            raises(submit, ValueError, f"{name}() in CLOSE", "Pool not running")
        require_state(pool, CLOSE, "the submits refused in CLOSE", witness)
    with running(make_pool(2)) as pool, Witness(pool) as witness:
        ending("terminate()", pool.terminate, witness)
        for name, submit in submissions(pool):
            raises(submit, ValueError, f"{name}() in TERMINATE", "Pool not running")
        require_state(pool, TERMINATE, "the submits refused in TERMINATE", witness)


@clause("LIFE-4", "close() after close()/terminate() does nothing; terminate() works in every state")
def life_4(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool, Witness(pool) as witness:
        within("close()", pool.close)
        within("close() again", pool.close)
        require_state(pool, CLOSE, "close() twice", witness)
        # Looking for CLOSE let the witness go and joined the pool.
        within("close() after join()", pool.close)
        within("terminate() after close() and join()", pool.terminate)
        within("terminate() again", pool.terminate)
        within("close() after terminate()", pool.close)
        require_state(pool, TERMINATE, "terminate(), then close()")
        within("join() after terminate()", pool.join)
        within("terminate() after join()", pool.terminate)
    with running(make_pool(2)) as pool, Witness(pool) as witness:
        ending("terminate() #1 from RUN", pool.terminate, witness)
        for i in (2, 3):
            within(f"terminate() #{i}", pool.terminate)
        within("close() after terminate()", pool.close)
        require_state(pool, TERMINATE, "terminate() three times, then close()", witness)


@clause("LIFE-5", "`with pool:` needs RUN; leaving the block terminates the pool")
def life_5(make_pool: PoolFactory) -> None:
    with running(make_pool(2)) as pool, Witness(pool) as witness:

        def use() -> Any:
            with pool as entered:
                return entered.apply_async(tasks.square, (5,)).get(WAIT)

        got = ending("with pool: apply_async(square, (5,)).get(), then leave the block", use, witness)
        require(got == 25, f"apply_async(square, (5,)) in the with block returned {got!r}")
        require_state(pool, TERMINATE, "leaving the `with pool:` block", witness)
    with contextlib.ExitStack() as pools:
        for how in ("close", "terminate"):
            pool = pools.enter_context(running(make_pool(1)))
            within(f"{how}()", getattr(pool, how))

            def enter(pool: Any = pool) -> None:
                with pool:
                    pass

            raises(enter, ValueError, f"`with pool:` after {how}()", "Pool not running")


@clause("LIFE-6", "a submit racing close() is refused or completed, never left unrun", extension=True)
def life_6(make_pool: PoolFactory) -> None:
    for round_ in range(3):
        with running(make_pool(2)) as pool:
            _race_close(pool, round_ + 1)


def _race_close(pool: Any, round_: int) -> None:
    """Four threads submit while the main thread closes the pool; every accepted job must settle."""
    accepted: list[tuple[int, Any]] = []
    refusals: list[str] = []
    lock = threading.Lock()

    def submit(offset: int) -> None:
        for i in range(offset, offset + 2000):
            try:
                job = pool.apply_async(tasks.square, (i,))
            except ValueError as refused:
                with lock:
                    refusals.append(f"ValueError({str(refused)!r})")
                return
            if job is None:  # neither a job nor a refusal (billiard's, once closed)
                with lock:
                    refusals.append("apply_async returned None")
                return
            with lock:
                accepted.append((i, job))

    submitters = [
        threading.Thread(target=submit, args=(k * 10000,), name="conform: submitter", daemon=True)
        for k in range(4)
    ]
    for thread in submitters:
        thread.start()
    step(f"round {round_}: wait for 50 accepted submits, then close()")
    wait_until(lambda: len(accepted) >= 50)
    pool.close()
    for thread in submitters:
        thread.join(WAIT)
    try:
        within(f"round {round_}: join() after close() with submits racing it", pool.join)
    except Broken as hung:
        unsettled = [i for i, job in accepted if not job.ready()]
        raise Broken(
            f"{hung}; {len(unsettled)} of {len(accepted)} submits accepted while close() raced them "
            f"were never run, e.g. square({unsettled[0] if unsettled else ''})"
        ) from None
    bad = [m for m in refusals if m != "ValueError('Pool not running')"]
    if bad:
        raise Broken(f"a submit racing close() was not refused with ValueError('Pool not running'): {bad[0]}")
    unsettled = [i for i, job in accepted if not job.ready()]
    require(
        not unsettled,
        f"{len(unsettled)} of {len(accepted)} submits accepted while close() raced them "
        f"were never run (e.g. square({unsettled[0] if unsettled else ''}))",
    )
    wrong = [i for i, job in accepted if job.get(0) != i * i]
    require(not wrong, f"accepted submits returned wrong values, e.g. square({wrong[:1]})")


@clause("LIFE-7", "a dropped running pool warns ResourceWarning and is terminated; a pending job keeps it")
def life_7(make_pool: PoolFactory) -> None:
    threads_before = set(threading.enumerate())
    children_before = child_processes() if have_proc() else set()
    # No job first: a settled job may hold its pool a moment longer, in the pool's own thread.
    holder: list[Any] = [make_pool(2)]
    resource = _dropped_warnings(holder, "drop the only reference to a running pool; gc.collect()")
    require(bool(resource), "a running pool was garbage-collected without a ResourceWarning")
    step("wait until the dropped pool's threads and workers are gone")
    gone = wait_until(
        lambda: not new_threads(threads_before) and (not have_proc() or child_processes() <= children_before)
    )
    if not gone:
        left = [t.name for t in new_threads(threads_before)]
        raise Broken(f"a dropped running pool was not terminated: threads {left} still run")

    with Gate() as gate:
        holder.append(make_pool(2))
        job = holder[0].apply_async(tasks.hold, (gate.task("kept"),))
        gate.wait_for(["started-kept"], "wait for the pending job to start")
        early = _dropped_warnings(holder, "drop the pool while its job is pending; gc.collect()")
        gate.open()
        ok, value = outcome(job, "the pending job of a dropped pool")
        require(not early, "a pool with a pending job was collected (ResourceWarning) while the job ran")
        require(ok and value == "kept", f"the pending job of a dropped pool ended with {value!r}")


def _dropped_warnings(holder: list[Any], what: str) -> list[str]:
    """Drop the pool in `holder`, collect garbage, and return the ResourceWarnings it caused."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step(what)
        holder.clear()
        gc.collect()
    found = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    # A recorded warning may hold the pool as its `source`: let it go, so the pool can be collected.
    caught.clear()
    gc.collect()
    return found
