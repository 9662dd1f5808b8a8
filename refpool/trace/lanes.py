"""Where each observation is drawn: on which lane, or from which lane to which, and its label.

A lane is a part of the pool: the caller, the three handler threads, each
worker, and the timekeeper. Who reports what (read from refpool/roster.py,
core.py and the thread names; the thread that reported each one is recorded
too, in its details):

- StateChanged: core.py, in the thread that called close(), terminate(),
  join() or Pool(): the caller's lane.
- WorkerStarted: Roster.add, called by WorkerHandler.maintain, which runs in
  the worker handler's thread, or, for the first workers, in the caller's
  thread from Pool() (so that they are forked before any thread exists). It
  is the worker handler's work either way: an arrow worker handler -> worker N.
- TaskHandedOut, SentinelSent: whichever thread found the worker with room
  (roster.py: "Who hands tasks out"): the task handler offering new tasks,
  the result handler serving the worker whose outcome it read or the ones
  left after a reap, the worker handler serving a worker it started, the
  timekeeper after a stop, the caller after cancel(). An arrow from that
  thread's lane to worker N: the task, or the sentinel, goes to the worker.
- TaskTakenBack: reported by the thread that takes the task back (the same
  threads): an arrow worker N -> that lane, since the task comes back from
  the worker to the pool.
- OutcomeDelivered: the result handler, reading a process worker's outcome:
  an arrow worker N -> result handler. (A thread worker settles its own.)
- TaskTimedOut: the timekeeper (Roster.expire_due), which stops the worker:
  an arrow timekeeper -> worker N.
- WorkerReaped: the result handler (Roster.reap), with the lost task and the
  tasks handed out again; ShutdownBegun: the task handler
  (Roster.begin_closing); JobCancelled: the caller (cancel()). Each on the
  lane of the thread that reported it.
"""

from __future__ import annotations

from typing import Final

from ..architecture import THREADS
from ..messages import TaskKey
from ..observer import (
    JobCancelled,
    Observation,
    OutcomeDelivered,
    SentinelSent,
    ShutdownBegun,
    StateChanged,
    TaskHandedOut,
    TaskTakenBack,
    TaskTimedOut,
    WorkerReaped,
    WorkerStarted,
)

# The pool's threads, by the names they are started with and the labels the
# component diagram gives them: refpool/architecture.py, whose thread names
# tests/test_diagrams.py finds in the code. The caller's thread is known by its
# ident instead (record.py).
_THREADS: Final = {thread.key: thread for thread in THREADS}
CALLER: Final = "caller"
TASK_HANDLER: Final = _THREADS["task_handler"].label
RESULT_HANDLER: Final = _THREADS["result_handler"].label
WORKER_HANDLER: Final = _THREADS["worker_handler"].label
TIMEKEEPER: Final = _THREADS["timekeeper"].label

THREAD_LANES: Final = {
    _THREADS[key].name: _THREADS[key].label
    for key in ("task_handler", "result_handler", "worker_handler", "timekeeper")
}


def worker_lane(worker_id: int) -> str:
    return f"worker {worker_id}"


def is_worker(lane: str) -> bool:
    return lane.startswith("worker ") and lane.removeprefix("worker ").isdigit()


def place(observation: Observation, reporter: str) -> tuple[str, str | None]:
    """The lane an observation is drawn on and, for a message, the lane it goes to;
    `reporter` is the lane of the thread that reported it."""
    match observation:
        case WorkerStarted(worker_id=worker):
            return WORKER_HANDLER, worker_lane(worker)
        case (
            TaskHandedOut(worker_id=worker) | SentinelSent(worker_id=worker) | TaskTimedOut(worker_id=worker)
        ):
            return reporter, worker_lane(worker)
        case TaskTakenBack(worker_id=worker) | OutcomeDelivered(worker_id=worker):
            return worker_lane(worker), reporter
        case _:
            return reporter, None


def _key(key: TaskKey) -> str:
    return f"({key[0]}, {key[1]})"


def _keys(keys: tuple[TaskKey, ...]) -> str:
    return ", ".join(_key(key) for key in keys) if keys else "none"


def describe(observation: Observation) -> str:
    """A short label: what happened, in the spec's words; tasks as (job id, position)."""
    match observation:
        case StateChanged(before=before, after=after, event=event):
            return f"state {before.name} -> {after.name} ({event.name})"
        case WorkerStarted(worker_id=worker, pid=pid):
            return f"start worker {worker} (pid {pid})"
        case TaskHandedOut(job_id=job, position=position):
            return f"hand out task {_key((job, position))}"
        case TaskTakenBack(job_id=job, position=position):
            return f"task {_key((job, position))} taken back, unstarted"
        case OutcomeDelivered(job_id=job, position=position, success=success):
            return f"outcome of {_key((job, position))}: {'success' if success else 'failure'}"
        case WorkerReaped(worker_id=worker, exitcode=exitcode, lost=lost, requeued=requeued):
            return (
                f"reap worker {worker} (exit code {exitcode}); lost {_keys(lost)}; "
                f"handed out again {_keys(requeued)}"
            )
        case JobCancelled(job_id=job, dropped=dropped, started=started):
            return f"job {job} cancelled; dropped {_keys(dropped)}; left running {_keys(started)}"
        case TaskTimedOut(job_id=job, position=position, timeout=timeout):
            return f"stop the worker: task {_key((job, position))} ran past its timeout of {timeout:g} s"
        case ShutdownBegun(live=live):
            return f"shutdown begun; workers {', '.join(map(str, live)) or 'none'}"
        case SentinelSent():
            return "sentinel"
    raise AssertionError(f"an observation refpool.observer does not define: {observation!r}")


def order(lanes: set[str]) -> tuple[str, ...]:
    """Lanes top to bottom as data flows: caller, task handler, workers, result handler, worker
    handler, then the timekeeper and any other thread, if they reported anything."""
    workers = sorted((lane for lane in lanes if is_worker(lane)), key=lambda lane: int(lane.split()[1]))
    fixed = (CALLER, TASK_HANDLER, *workers, RESULT_HANDLER, WORKER_HANDLER)
    extra = [TIMEKEEPER] if TIMEKEEPER in lanes else []
    others = sorted(lanes - set(fixed) - {TIMEKEEPER})
    return (*fixed, *extra, *others)
