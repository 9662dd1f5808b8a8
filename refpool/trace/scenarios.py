"""The scenarios `refpool trace` runs: a small process pool doing one thing worth watching.

Each one synchronizes with the pool through the trace itself (it waits for
the events it needs, never for a time) and through gates: events shared with
the workers, on which their tasks wait until the scenario opens them. So the
interesting moment (close() with work in flight, a worker dying while it
holds tasks behind the one it runs) happens when the scenario says.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import Final

from ..errors import PoolTerminatedError, TaskTimeoutError, WorkerLostError
from ..messages import TaskKey
from ..observer import TaskHandedOut, WorkerStarted
from ..pool import Pool
from . import tasks
from .record import Recorder, Trace, TraceEvent

WAIT: Final = 30.0  # seconds: the longest any step may take before the scenario gives up
TIMEOUT: Final = 0.25  # seconds: the per-task timeout of the timeout scenario
GATES: Final = 2  # the scenarios need at most two gates: 0 and 1


def handed_out(keys: set[TaskKey], worker: int | None = None) -> Callable[[Sequence[TraceEvent]], bool]:
    """Whether every one of these tasks has been handed out (to `worker`, if given)."""

    def happened(events: Sequence[TraceEvent]) -> bool:
        seen = {
            (o.job_id, o.position)
            for o in (event.observation for event in events)
            if isinstance(o, TaskHandedOut) and (worker is None or o.worker_id == worker)
        }
        return keys <= seen

    return happened


def worker_started(worker: int) -> Callable[[Sequence[TraceEvent]], bool]:
    def happened(events: Sequence[TraceEvent]) -> bool:
        return any(
            isinstance(event.observation, WorkerStarted) and event.observation.worker_id == worker
            for event in events
        )

    return happened


class Run:
    """One scenario's pool, its gates and its recorder; `finish` always leaves no worker behind."""

    def __init__(self, workers: int) -> None:
        context = multiprocessing.get_context()
        pipes = [context.Pipe(duplex=False) for _ in range(GATES)]
        self.gates = tuple(reader for reader, _ in pipes)  # for the workers (tasks.py)
        self._openers = tuple(writer for _, writer in pipes)
        self.recorder = Recorder()
        self.step = self.recorder.step
        self.step(f"Pool({workers})")
        self.pool = Pool(
            workers, initializer=tasks.keep_gates, initargs=self.gates, observer=self.recorder.observe
        )

    def open(self, gate: int) -> None:
        self._openers[gate].send_bytes(b"open")

    def close_and_join(self) -> None:
        self.step("close()")
        self.pool.close()
        self.step("join()")
        self.pool.join()
        self.step("join() returned")

    def abandon(self) -> None:
        """The scenario failed: leave no worker behind."""
        for gate in range(GATES):  # a task still waiting ends, if its worker still runs
            self.open(gate)
        self.pool.terminate()
        self.pool.join()

    def close_gates(self) -> None:
        for end in (*self.gates, *self._openers):
            end.close()


def map_scenario(run: Run, workers: int) -> None:
    run.step("map(square, range(8))")
    result = run.pool.map(tasks.square, range(8))
    run.step(f"returned {result}")
    run.close_and_join()


def close_scenario(run: Run, workers: int) -> None:
    """close() while every worker runs a task: the sentinels go out as each one finishes."""
    job = run.pool.map_async(tasks.held_square, range(workers), chunksize=1)
    run.step(f"map_async(held_square, range({workers}), chunksize=1): job {job.job_id}")
    run.recorder.wait_until("every task handed out", handed_out({(job.job_id, i) for i in range(workers)}))
    run.step("close()")
    run.pool.close()
    # Every task is offered: from here each worker gets its sentinel as soon as it is idle.
    run.recorder.wait_until("shutdown begun", lambda events: any(e.kind == "ShutdownBegun" for e in events))
    run.step("open the gate: the tasks finish")
    run.open(0)
    run.step("join()")
    run.pool.join()
    run.step("join() returned")
    run.step(f"get() returned {job.get(WAIT)}")


def terminate_scenario(run: Run, workers: int) -> None:
    """terminate() while every worker holds two tasks it cannot finish."""
    count = 2 * workers
    job = run.pool.map_async(tasks.held_square, range(count), chunksize=1)
    run.step(f"map_async(held_square, range({count}), chunksize=1): job {job.job_id}")
    run.recorder.wait_until("every task handed out", handed_out({(job.job_id, i) for i in range(count)}))
    run.step("terminate()")
    run.pool.terminate()
    try:
        job.get(WAIT)
    except PoolTerminatedError as error:
        run.step(f"get() raised PoolTerminatedError: {error}")
    run.step("join()")
    run.pool.join()
    run.step("join() returned")


def crash_scenario(run: Run, workers: int) -> None:
    """Worker 1 dies (os._exit) while it holds a task behind the one it runs: that one is lost
    (WorkerLostError), the one behind it is handed out again, and a replacement starts.

    The roster hands each task to the least busy worker, the first one on a tie:
    the crash to worker 1, one held task to each other worker, then the last
    task to worker 1 again, behind the crash. The held tasks keep the other
    workers busy until the replacement has run the last task, so that none of
    them takes it first.
    """
    pool, step = run.pool, run.step
    crash = pool.apply_async(tasks.die_when_released, (0,))
    step(f"apply_async(die_when_released): job {crash.job_id}")
    held = []
    for x in range(1, workers):
        held.append(pool.apply_async(tasks.held_square, (x, 1)))
        step(f"apply_async(held_square, ({x},)): job {held[-1].job_id}")
    behind = pool.apply_async(tasks.square, (workers,))
    step(f"apply_async(square, ({workers},)): job {behind.job_id}")
    keys = {(job.job_id, 0) for job in (crash, *held, behind)}
    run.recorder.wait_until("every task handed out", handed_out(keys))
    step("open gate 0: worker 1 dies")
    run.open(0)
    try:
        crash.get(WAIT)
    except WorkerLostError as error:
        step(f"get() raised WorkerLostError: {error}")
    replacement = workers + 1
    run.recorder.wait_until(
        f"the task behind the crash handed out to worker {replacement}",
        handed_out({(behind.job_id, 0)}, replacement),
    )
    # The held tasks end only after this: a worker whose held task ended would be idle, and
    # could take the task back from the replacement before it starts it (WORK-5).
    step(f"get() returned {behind.get(WAIT)}")
    if held:
        step("open gate 1: the held tasks finish")
        run.open(1)
        step(f"get() returned {[job.get(WAIT) for job in held]}")
    run.close_and_join()


def timeout_scenario(run: Run, workers: int) -> None:
    """A task that runs past its timeout: the timekeeper stops its worker, the task fails with
    TaskTimeoutError, and a replacement starts."""
    pool, step = run.pool, run.step
    job = pool.apply_async(tasks.held_square, (3, 1), timeout=TIMEOUT)  # gate 1 stays shut
    step(f"apply_async(held_square, (3,), timeout={TIMEOUT}): job {job.job_id}")
    try:
        job.get(WAIT)
    except TaskTimeoutError as error:
        step(f"get() raised TaskTimeoutError: {error}")
    run.recorder.wait_until(f"worker {workers + 1} started", worker_started(workers + 1))
    step("apply(square, (4,))")
    step(f"returned {pool.apply(tasks.square, (4,))}")
    run.close_and_join()


SCENARIOS: Final[dict[str, Callable[[Run, int], None]]] = {
    "map": map_scenario,
    "close": close_scenario,
    "terminate": terminate_scenario,
    "crash": crash_scenario,
    "timeout": timeout_scenario,
}


def run_scenario(scenario: str, workers: int = 2) -> Trace:
    """Run one scenario on a pool of `workers` processes; its trace."""
    if scenario not in SCENARIOS:
        raise ValueError(f"no scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    if workers < 1:
        raise ValueError(f"workers must be 1 or more, not {workers!r}")
    run = Run(workers)
    try:
        SCENARIOS[scenario](run, workers)
    except BaseException:
        run.abandon()
        raise
    finally:
        run.close_gates()
    return run.recorder.trace(scenario, workers)
