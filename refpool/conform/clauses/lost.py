"""The checks of the LOST clauses: workers that die, and what becomes of their tasks."""

from __future__ import annotations

import os
import signal
import tempfile

from .. import tasks
from ..registry import PoolFactory, require, step
from .common import (
    clause,
    describe,
    error_of,
    next_of,
    process_pool,
    require_squares,
    running,
    short,
    value_of,
    within,
)
from .gates import Gate
from .states import RUN, require_state


@clause("LOST-1", "a worker that dies fails the job whose task it held", extension=True)
def lost_1(make_pool: PoolFactory) -> None:
    hang = "a worker {} and its job never settled: get() timed out after 10 s (CPython bpo-22393)"
    with running(process_pool(make_pool, 2)) as pool, Gate() as gate:
        error_of(
            pool.apply_async(tasks.exit_abruptly, (3,)),
            "a task calls os._exit(3)",
            hang.format("called os._exit(3) mid-task"),
        )
        error_of(
            pool.apply_async(tasks.exit_by_sys_exit, (4,)),
            "a task calls sys.exit(4)",
            hang.format("called sys.exit(4) mid-task"),
        )
        held = pool.apply_async(tasks.hold_then_report_pid, (gate.task("victim"),))
        victim = gate.pid_of("victim")
        step(f"SIGKILL worker {victim}")
        os.kill(victim, signal.SIGKILL)
        # Any exception will do here; refpool's WorkerLostError names the pid and exit code.
        error_of(held, "a task whose worker was killed", hang.format("was killed mid-task"))
        got = value_of(pool.apply_async(tasks.square, (4,)), "apply_async after workers died")
        require(got == 16, f"square(4) after workers died returned {got!r}")
    # Outcomes sent before the worker died are read first: one worker, so item 2's worker ran 0 and 1.
    with running(process_pool(make_pool, 1)) as pool:
        results = pool.imap(tasks.exit_at, range(5))
        seen = [
            next_of(
                results,
                "imap(exit_at) where item 2 exits the worker",
                "a worker exited mid-task and imap never yielded that item",
            )
            for _ in range(6)
        ]
        kinds = [kind for kind, _ in seen]
        require(
            kinds == ["value", "value", "error", "value", "value", "stop"],
            f"imap where item 2's worker exits yielded {short(seen)}",
        )


@clause("LOST-3", "a worker's death fails one task, never those queued behind it", extension=True)
def lost_3(make_pool: PoolFactory) -> None:
    # One worker, so that every task is queued behind the one it runs, wherever the
    # pool keeps them: in a queue of its own, or written ahead to that worker.
    with running(process_pool(make_pool, 1)) as pool, Gate() as gate:
        held = pool.apply_async(tasks.hold_then_report_pid, (gate.task("victim"),))
        victim = gate.pid_of("victim")
        queued = [pool.apply_async(tasks.square, (i,)) for i in range(8)]
        step(f"SIGKILL worker {victim}, with 8 tasks queued behind its task")
        os.kill(victim, signal.SIGKILL)
        error_of(
            held, "the task whose worker was killed", "a worker was killed mid-task and its job never settled"
        )
        require_squares(
            queued,
            "task {i} of 8 queued behind the killed worker's task",
            "task {i} of 8 queued behind a killed worker's task never ran",
        )


@clause("LOST-4", "a raising initializer loses no task; jobs fail if it keeps raising", extension=True)
def lost_4(make_pool: PoolFactory) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="refpool-conform-") as folder,
        running(make_pool(2, initializer=tasks.fail_first_initializers, initargs=(folder, 2))) as pool,
    ):
        jobs = [pool.apply_async(tasks.square, (i,)) for i in range(20)]
        require_squares(
            jobs,
            "task {i} in a pool whose first two workers' initializer raised",
            "task {i} never settled after two workers' initializer raised",
        )
        within("close()", pool.close)
        within("join()", pool.join)
    with running(make_pool(2, initializer=tasks.failing_initializer)) as pool:
        error = error_of(
            pool.apply_async(tasks.square, (2,)),
            "a task in a pool whose initializer always raises",
            "a task waited for a worker whose initializer always raises",
        )
        causes: list[BaseException] = []
        cause: BaseException | None = error
        while cause is not None and len(causes) < 10:
            causes.append(cause)
            cause = cause.__cause__
        require(
            any("fails on purpose" in str(c) for c in causes),
            f"a job failed with {describe(error)}, whose causes do not include the initializer's exception",
        )
        within("close()", pool.close)
        within("join()", pool.join)


@clause("LOST-2", "a worker that dies changes nothing else: state, replacement, other jobs")
def lost_2(make_pool: PoolFactory) -> None:
    with running(process_pool(make_pool, 2)) as pool, Gate() as gate:
        long = pool.apply_async(tasks.hold, (gate.task("long"),))
        gate.wait_for(["started-long"], "wait for a long task to hold one worker")
        pool.apply_async(tasks.exit_abruptly, (3,))  # the other worker dies; its job is LOST-1's business
        got = value_of(
            pool.apply_async(tasks.square, (5,)),
            "a new job after a worker died",
            "a worker died, and a new job never ran (the worker was not replaced)",
        )
        require(got == 25, f"square(5) after a worker died returned {got!r}")
        require_state(pool, RUN, "a worker died")
        got = value_of(pool.map_async(tasks.square, range(20)), "map_async after a worker died")
        require(got == [x * x for x in range(20)], f"map after a worker died returned {short(got)}")
        gate.open()
        got = value_of(long, "a job that ran while another worker was lost")
        require(got == "long", f"a job that ran while another worker was lost returned {got!r}")
