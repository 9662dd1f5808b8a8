"""The pool's design as a transition system: every state, every step, every invariant.

Theory of operation
-------------------
A state is an immutable snapshot of everything that matters for correctness
(spec/pool.md): the pool's lifecycle state, how far the task handler has got,
the roster (which tasks each worker holds, with their numbers), the `ready`
queue, each worker's inbox, claim word and outbox, and how each task ended. An
*action* is one atomic step of one part of the pool, of the caller or of the
environment (a crash). `enabled_actions` says which steps can happen next and
`step` takes one; an explorer (models/explore.py) tries every interleaving,
and `invariant_violations` / `final_violations` say what must hold. Each step
of the parent is as atomic as refpool makes it: what a handler does under
`Roster.cond` is one step, and nothing else interleaves with it.

    caller:          submit, close, terminate, join
                     cancel(job)         CANCEL-1, below
                     take_result(task)   a buffered imap's consumer takes the next result, in
                                         order, then draws one more task while fewer than
                                         `buffersize` drawn tasks have results not taken (BUF-1)
    task handler:    offer(task)         the next submitted task, in order, to the least busy
                                         worker that can take it, or to the back of `ready`; a
                                         task of a cancelled job is dropped instead (CANCEL-1)
                     begin_closing       after close, once every task has been offered: the
                                         pool is *closing*, and idle workers get their sentinel
    worker:          claim(worker)       under the claim word's lock: its next task's number is
                                         above `revoked`, so `claimed` = that number (WORK-6)
                     skip(worker)        ... or it is not: the task was taken back
                     run(worker)         run the claimed task, send its outcome; exit after
                                         maxtasksperchild tasks run (WORK-4)
                     exit(worker)        take the sentinel and exit
                     crash(worker)       exit at any moment (at most max_crashes in a run)
    result handler:  read_outcome(worker, task)  free the worker's hold on the task and serve
                                         the worker (below); settle the task
                     see_exit(worker)    see that a worker has exited: what it sent is read
                                         from now on without serving it (Roster.exited)
                     reap(worker)        once all it sent is read: its oldest task fails, the
                                         ones behind go to the front of `ready` (LOST-1,
                                         LOST-3); tell the worker handler
    worker handler:  start_workers       after a reap: back to `workers` workers while the pool
                                         may grow; once closing, at most one per ready task
    timekeeper:      expire(worker, task)  TIME-2, below (at most max_expiries in a run)

Serving a worker (Roster._serve), inside the step that frees it: it takes
tasks from the front of `ready` while it can; if it then holds nothing and
nothing is ready, the parent takes back the unstarted tasks of the busiest
worker that holds two or more (`take back`: read `claimed`, set `revoked` to
the last number sent; every held task above `claimed` is the parent's again),
puts them at the front of `ready` and hands them out one at a time to the
least busy workers that can take them; a victim left holding started tasks is
*stalled*: it takes nothing until it holds nothing. If nothing can be taken
back and the pool is closing, the worker is sent its sentinel. A worker can
take a task when it is not seen exited, has no sentinel, holds fewer than
`depth`, has been handed fewer than maxtasksperchild (net of those taken
back), and holds nothing or is not stalled. Ties go to the first worker in
the roster, which is in the order workers joined it, as a dict's is.

Jobs, cancellation and timeouts (Roster.cancel, Roster.expire_due). The tasks
are split into `jobs` jobs of consecutive tasks (Config.job_of); a job settles
once (JOB-1): at its first failed task (as a map job does), when its last
task succeeds, or when it is cancelled; what comes for it after that is
ignored (JobCache).
- cancel(job), a caller action while the job has not settled (CANCEL-1,
  CANCEL-3), is one step under `cond`: the job's tasks in `ready` are
  dropped; every worker holding a task of the job is taken back from (as
  above); the job's tasks taken back are dropped, the others go to the front
  of `ready` and are handed out again (serve every worker); a victim left
  holding a started task is stalled. The job settles as cancelled in that
  step, and its tasks that never started end as "cancelled" with it, those
  the task handler has not offered yet too (it drops them when it comes to
  them). Its tasks that have started run to their end; their outcomes free
  their worker as usual and find the job settled.
- expire(worker, task), the timekeeper, enabled while a task the worker
  holds has started (its number is at most `claimed`) and its outcome has
  not been read, and the parent has not seen the worker exit (every task has
  a timeout: what is enabled without one is a subset). In one step under
  `cond`: take back the worker's unstarted tasks (to the front of `ready`;
  serve every worker); if `claimed` is still the task's number, the worker
  is killed: it runs nothing more (an outcome it sent is still read), and
  the parent records it as exited at once, so it is handed nothing more.
  Otherwise the worker has finished the task and claimed a later one since
  the timekeeper read `claimed` (roster.expire_due reads it, then takes
  back): it is left alone, and the timed task keeps its outcome. At the
  reap, the task the worker was killed for, if it still holds it, fails as
  "timeout" instead of "lost" (never run again); the worker is replaced as
  after any death.
- A buffered imap (`buffersize`, BUF-1) is one job of every task: `buffersize`
  tasks are drawn (submitted) when it is called, then one more in the step in
  which the consumer takes a result, after taking it.

Abstractions, on purpose:
- Process workers only, every task small: a thread worker's inbox is a deque
  whose ends are the claim (claims.ThreadInbox), and the inbox budget
  (WORK-7) never bites. `ready` never reaches READY_LIMIT, so the task
  handler never waits for room.
- A task handed out is recorded and written in one step, though refpool
  records it under `cond` and writes it after (Handout.send). A worker that
  has not read a task yet behaves as one that has not been sent it, and a
  write to a dead worker is lost either way; the worker's `writing` lock keeps
  a sentinel behind the tasks recorded before it (models/pool.pml checks
  that split). The task handler offers one task per step, where refpool
  offers up to 16 under one lock: more interleavings, not fewer.
- Claiming and running are two steps, so that a take-back can see a task
  claimed but not finished, and a worker can die while it runs one; running a
  task and sending its outcome are one (refpool writes each outcome at once).
- The parent sees a death only at `see_exit`, so until then it may hand tasks
  to a dead worker and take back from it; the oldest of them fails when the
  worker is reaped (LOST-1).
- The lost task is settled in the reap step, though refpool fails it just
  after leaving `cond`; the worker handler's requests since it last ran are
  one (`notified`): running it again finds nothing to start.
- A worker's id is its slot: a replacement takes the lowest free id (and joins
  the roster at its end). Messages sent to an exited worker are lost, so its
  inbox is empty; outcomes it sent stay in its outbox until read.
- terminate() is one atomic step: refpool stops the handlers, kills every
  worker and fails every unsettled task (SHUT-5) before it returns, and no
  handler acts once `Roster.terminating` is set.
- cancel() is one step, though refpool marks the job as settling (JobCache),
  then withdraws its tasks under `cond`, then settles it: a task that starts
  in between started before cancel() returned. A job's error_callback, and
  the imap iterator's own view of a cancel, are not modelled.
- Time is not modelled: any started task may expire, at any moment, and
  expire(worker, task) of a task numbered below `claimed` is the timekeeper's
  race with a worker that finishes the task and claims the next one between
  the timekeeper's reading `claimed` and its take-back. The timekeeper stops
  one worker per step, though expire_due may stop several under one `cond`.
- A buffered imap's input never raises and has `tasks` items; what its
  iterator yields after close() or terminate() is not modelled, only what
  the pool runs and that close() stops the drawing.

Public API (the tests reuse it): `Config`, `initial_state`, `enabled_actions`,
`step`, `successor`, `invariant_violations`, `at_rest`, `final_violations`,
the predicates `can_take`, `retiring`, `idle`, `may_grow`, `finished`,
`cancelled`, and the records `State`, `Worker`, `Action`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, NamedTuple

__all__ = [
    "BUGS",
    "CALLER_ACTIONS",
    "CLOSE",
    "FAULT_ACTIONS",
    "RUN",
    "SENTINEL",
    "TERMINATE",
    "Action",
    "Config",
    "State",
    "Worker",
    "at_rest",
    "can_take",
    "cancelled",
    "enabled_actions",
    "final_violations",
    "finished",
    "idle",
    "initial_state",
    "invariant_violations",
    "may_grow",
    "retiring",
    "step",
    "successor",
]

RUN: Final = "RUN"
CLOSE: Final = "CLOSE"
TERMINATE: Final = "TERMINATE"

SENTINEL: Final = "sentinel"  # in an inbox, beside numbered tasks

# Seeded bugs, each the kind of slip the real code guards against:
BUGS: Final = frozenset(
    {
        "one_sentinel_too_few",  # begin_closing sends one sentinel fewer than the idle workers need
        "start_after_close",  # once closing, the worker handler still starts `workers - live` workers
        "drop_task_on_crash",  # reaping a dead worker forgets its oldest task instead of failing it
        "reap_not_reported",  # reaping a worker does not tell the worker handler: it is never replaced
        "fail_all_on_crash",  # reaping a dead worker fails every task it held, not just the oldest
        "claim_without_lock",  # the worker reads `revoked` and sets `claimed` in two steps
        "take_back_without_skip",  # the worker runs a task numbered <= `revoked` instead of skipping it
        "no_take_back",  # a worker that becomes idle takes back nothing from a busy one
        "cancel_leaves_inbox",  # cancel drops the job's ready tasks but takes nothing back from inboxes
        "cancel_drops_others",  # cancel drops the other jobs' tasks it takes back instead of requeueing them
        "timeout_requeues_running",  # at an expiry the running timed task is taken back too, to run again
        "expiry_keeps_worker",  # the worker killed at an expiry is not recorded as exited: it may get tasks
        "expiry_serves_only_kills",  # an expiry that kills no worker serves no worker with what it took back
        "refill_before_take",  # the consumer draws the next task before it takes a result, not after
    }
)

CALLER_ACTIONS: Final = frozenset({"submit", "close", "terminate", "join", "cancel", "take_result", "draw"})
FAULT_ACTIONS: Final = frozenset({"crash", "expire"})  # the environment: a death, or time passing


@dataclass(frozen=True)
class Config:
    """The bounds of one model run.

    workers: `processes`; tasks: how many tasks the caller submits; max_crashes:
    how many worker crashes may happen in a run; maxtasks: `maxtasksperchild`;
    depth: how many tasks a worker holds at most (refpool: 8);
    allow_terminate: whether the caller may call terminate(); submit_upfront:
    the tasks are all submitted before anything else happens (else `submit` is
    a caller action, allowed while RUN); bugs: names from BUGS to seed.

    The features below are off by default, so that a run without them is the
    same search as before them. jobs: the tasks are split into this many jobs
    of consecutive tasks (the first jobs get one more where it does not
    divide); max_cancels: how many jobs the caller may cancel in a run
    (CANCEL-1); max_expiries: how many times the timekeeper may find a task
    past its time in a run (TIME-2; every task has a timeout when > 0);
    buffersize: the tasks are one buffered imap, drawn as its consumer takes
    results (BUF-1), instead of submitted.
    """

    workers: int = 2
    tasks: int = 2
    max_crashes: int = 0
    maxtasks: int | None = None
    depth: int = 2
    allow_terminate: bool = True
    submit_upfront: bool = True
    bugs: frozenset[str] = frozenset()
    jobs: int = 1
    max_cancels: int = 0
    max_expiries: int = 0
    buffersize: int | None = None
    # Derived: the job of each task, and the tasks of each job.
    job_of: tuple[int, ...] = field(init=False, repr=False, compare=False)
    job_tasks: tuple[range, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.workers < 1 or self.tasks < 0 or self.max_crashes < 0 or self.depth < 1:
            raise ValueError(
                f"bad bounds: workers={self.workers} tasks={self.tasks} "
                f"max_crashes={self.max_crashes} depth={self.depth}"
            )
        if self.maxtasks is not None and self.maxtasks < 1:
            raise ValueError(f"maxtasks must be a positive int or None, not {self.maxtasks!r}")
        unknown = set(self.bugs) - BUGS
        if unknown:
            raise ValueError(f"unknown bugs {sorted(unknown)}; known: {sorted(BUGS)}")
        if self.jobs < 1 or (self.jobs > 1 and self.jobs > self.tasks):
            raise ValueError(f"jobs must be from 1 to tasks={self.tasks}, not {self.jobs!r}")
        if self.max_cancels < 0 or self.max_expiries < 0:
            raise ValueError(f"bad bounds: max_cancels={self.max_cancels} max_expiries={self.max_expiries}")
        if self.buffersize is not None:
            if self.buffersize < 1:
                raise ValueError(f"buffersize must be None or > 0, not {self.buffersize!r}")
            if self.jobs != 1 or self.max_cancels or not self.submit_upfront:
                raise ValueError(
                    "a buffered imap is one job that draws its own tasks: "
                    "leave jobs=1, max_cancels=0 and submit_upfront=True"
                )
        sizes = [self.tasks // self.jobs + (job < self.tasks % self.jobs) for job in range(self.jobs)]
        starts = [sum(sizes[:job]) for job in range(self.jobs)]
        job_tasks = tuple(range(start, start + size) for start, size in zip(starts, sizes, strict=True))
        # Frozen: set once, here.
        object.__setattr__(self, "job_tasks", job_tasks)
        object.__setattr__(self, "job_of", tuple(job for job, tasks in enumerate(job_tasks) for _ in tasks))


Numbered = tuple[int, int]  # (its number among the tasks sent to its worker: 1, 2, 3, ...; the task)


class Worker(NamedTuple):
    """One worker in the roster: started, and not yet reaped by the result handler."""

    wid: int
    # The worker process.
    alive: bool  # False: it has exited (the parent may not have seen it yet)
    inbox: tuple[Numbered | str, ...]  # FIFO of numbered tasks and SENTINEL; empty once exited
    running: int | None  # the task it has claimed and not finished
    checked: bool  # claim_without_lock only: it has read `revoked` for its next task, not yet claimed it
    outbox: tuple[int, ...]  # outcomes sent, not yet read by the result handler
    done: int  # tasks it has run: its own count, for maxtasksperchild
    # Its claim word (claims.py), shared by both sides; both counters only grow.
    claimed: int  # the number of the last task it has started
    revoked: int  # every task numbered up to here that it has not started is the parent's again
    # The parent's record of it (roster.WorkerRecord).
    held: tuple[Numbered, ...]  # the tasks it holds, oldest first (WORK-3)
    last_number: int  # of the last task sent to it
    handed: int  # tasks handed to it, less those taken back (maxtasksperchild, WORK-3)
    stalled: bool  # tasks were taken back behind a task it runs: it takes none until it holds none
    sentinels: int  # shutdown sentinels sent to it (SHUT-2: at most one)
    exited: bool  # the parent has seen it exit, or has killed it; what it sent may still be read
    expired: int | None  # the task it was killed for, past its time (TIME-2; WorkerRecord.timed_out)


class State(NamedTuple):
    pool: str  # RUN, CLOSE or TERMINATE
    submitted: int  # tasks 0 .. submitted-1 are in the task queue or beyond
    offered: int  # tasks 0 .. offered-1 have been offered: handed out, or put in `ready`
    ready: tuple[int, ...]  # tasks that wait for a worker that can take them, in order
    closing: bool  # closed, and every task offered: idle workers get their sentinels
    notified: bool  # a worker was reaped and the worker handler has not acted on it yet
    workers: tuple[Worker, ...]  # the roster, in the order the workers joined it
    started: tuple[int, ...]  # per task: how many times a worker has claimed it (WORK-6)
    # Per task, each way it ended: "ok", "lost", "terminated", "timeout" (TIME-2), "cancelled"
    # (dropped by a cancel, never started; CANCEL-1).
    settled: tuple[tuple[str, ...], ...]
    crashes: int
    late_starts: int  # the most workers one start_workers started beyond what WORK-1 and WORK-2 allow
    lost_at_once: int  # the tasks one worker's death failed, if more than one (LOST-3); else 0
    joined: bool
    # Per job, each way it settled (JOB-1): "ok", "cancelled", or the way its first failed task ended.
    job_settled: tuple[tuple[str, ...], ...]
    expiries: int  # expire steps taken (at most max_expiries)
    taken: int  # results a buffered imap's consumer has taken, in order (BUF-1)
    # What a step did wrong, as late_starts records it, each (clause, task): a task of a cancelled job
    # claimed after the cancel ("CANCEL-1"); a task of another job that a cancel or an expiry took
    # back and left neither in `ready` nor held ("CANCEL-3", "TIME-2"). Empty unless a bug is seeded.
    wrongs: tuple[tuple[str, int], ...]


class Action(NamedTuple):
    """One atomic step, e.g. `Action("read_outcome", worker=1, task=0)`."""

    name: str
    worker: int | None = None
    task: int | None = None
    job: int | None = None

    def __str__(self) -> str:
        pairs = (("worker", self.worker), ("task", self.task), ("job", self.job))
        args = [f"{name}={value}" for name, value in pairs]
        return f"{self.name}({', '.join(a for a in args if not a.endswith('None'))})"


def _fresh_worker(wid: int, alive: bool = True, handed: int = 0, sentinels: int = 0) -> Worker:
    # Positional, in field order: this runs for every state (_terminate), and _replace is slow.
    return Worker(wid, alive, (), None, False, (), 0, 0, 0, (), 0, handed, False, sentinels, False, None)


def initial_state(config: Config) -> State:
    """A constructed pool: RUN, with `workers` workers started (LIFE-1)."""
    if config.buffersize is not None:
        submitted = min(config.buffersize, config.tasks)  # drawn when imap is called (BUF-1)
    else:
        submitted = config.tasks if config.submit_upfront else 0
    return State(
        pool=RUN,
        submitted=submitted,
        offered=0,
        ready=(),
        closing=False,
        notified=False,
        workers=tuple(_fresh_worker(wid) for wid in range(config.workers)),
        started=(0,) * config.tasks,
        settled=((),) * config.tasks,
        crashes=0,
        late_starts=0,
        lost_at_once=0,
        joined=False,
        job_settled=((),) * config.jobs,
        expiries=0,
        taken=0,
        wrongs=(),
    )


# --- predicates the real code computes (roster.py), on the parent's record ---------


def retiring(worker: Worker, config: Config) -> bool:
    """It has been handed its maxtasksperchild tasks: it will exit by itself (roster.retiring)."""
    return config.maxtasks is not None and worker.handed >= config.maxtasks


def can_take(worker: Worker, config: Config) -> bool:
    """Roster._can_take, every task within the inbox budget. The parent cannot see a death
    before `see_exit`."""
    if worker.exited or worker.sentinels or len(worker.held) >= config.depth or retiring(worker, config):
        return False
    return not worker.held or not worker.stalled


def idle(worker: Worker, config: Config) -> bool:
    """It holds no task and may be given one (spec, Words), as far as the parent knows."""
    return not worker.held and not worker.exited and not worker.sentinels and not retiring(worker, config)


def may_grow(state: State) -> bool:
    """RUN, or CLOSE before the pool is closing (WORK-1, WORK-2)."""
    return state.pool != TERMINATE and not state.closing


def finished(state: State) -> bool:
    """join() can return: terminated, or closing with no worker and no ready task (Roster.finished)."""
    return state.pool == TERMINATE or (state.closing and not state.workers and not state.ready)


def _workers_to_start(state: State, config: Config) -> int:
    """roster.workers_to_start: what WORK-1 and WORK-2 allow the worker handler to start now."""
    live = len(state.workers)
    if state.pool == TERMINATE:
        return 0
    if state.closing:
        return min(config.workers - live, len(state.ready))
    return config.workers - live


# --- enabled actions ------------------------------------------------------


def _worker_actions(w: Worker, config: Config) -> list[Action]:
    if not w.alive:
        return []
    if w.running is not None:
        return [Action("run", w.wid)]
    if not w.inbox:
        return []
    head = w.inbox[0]
    if isinstance(head, str):
        return [Action("exit", w.wid)]
    number, _ = head
    if "take_back_without_skip" in config.bugs:
        return [Action("claim", w.wid)]
    if "claim_without_lock" in config.bugs and w.checked:
        return [Action("claim", w.wid)]  # it writes `claimed` without reading `revoked` again
    if number <= w.revoked:
        return [Action("skip", w.wid)]
    if "claim_without_lock" in config.bugs:
        return [Action("read_revoked", w.wid)]
    return [Action("claim", w.wid)]


def cancelled(state: State, job: int) -> bool:
    """The job was cancelled (it then settled as cancelled, and nothing settles it again)."""
    return "cancelled" in state.job_settled[job]


def _cancel_actions(state: State, config: Config) -> list[Action]:
    """cancel(job) while the job has not settled (else cancel() returns False and does nothing).
    A job is submitted whole: with submit_while_running, once its last task is."""
    if sum(cancelled(state, job) for job in range(config.jobs)) >= config.max_cancels:
        return []
    return [
        Action("cancel", job=job)
        for job, tasks in enumerate(config.job_tasks)
        if tasks and tasks.stop <= state.submitted and not state.job_settled[job]
    ]


def _consumer_actions(state: State, config: Config) -> list[Action]:
    """A buffered imap's consumer: take the next result once it is in (BUF-1)."""
    assert config.buffersize is not None
    actions = []
    drawn, taken = state.submitted, state.taken
    waits = "refill_before_take" in config.bugs and state.pool == RUN and taken < drawn < config.tasks
    if waits and drawn - taken <= config.buffersize:  # it counts the result it waits for as taken
        actions.append(Action("draw", task=drawn))
    if state.taken < state.submitted and state.settled[state.taken]:
        actions.append(Action("take_result", task=state.taken))
    return actions


def enabled_actions(state: State, config: Config) -> list[Action]:
    """Every action that can happen next, in a fixed order: caller, task handler, workers, result
    handler, worker handler. Empty exactly in a final state."""
    if state.joined:
        return []
    actions: list[Action] = []
    if state.pool == RUN:
        if state.submitted < config.tasks and config.buffersize is None:
            actions.append(Action("submit", task=state.submitted))
        actions.append(Action("close"))
    if config.allow_terminate and state.pool != TERMINATE:
        actions.append(Action("terminate"))
    if state.pool != RUN and finished(state):
        actions.append(Action("join"))
    if state.pool == TERMINATE:
        return actions  # every handler has stopped and every worker is dead
    if config.max_cancels:
        actions += _cancel_actions(state, config)
    if config.buffersize is not None:
        actions += _consumer_actions(state, config)

    if state.offered < state.submitted:
        actions.append(Action("offer", task=state.offered))
    elif state.pool == CLOSE and not state.closing:
        actions.append(Action("begin_closing"))

    for w in state.workers:
        actions.extend(_worker_actions(w, config))
        if w.alive and state.crashes < config.max_crashes:
            actions.append(Action("crash", w.wid))
        if state.expiries < config.max_expiries and not w.exited and w.expired is None:
            # Roster.expire_due: a task it has started whose outcome has not been read.
            actions += [Action("expire", w.wid, task) for number, task in w.held if number <= w.claimed]

    for w in state.workers:
        if w.outbox:
            actions.append(Action("read_outcome", w.wid, w.outbox[0]))
        if not w.alive and not w.exited:
            actions.append(Action("see_exit", w.wid))
        elif w.exited and not w.outbox:
            actions.append(Action("reap", w.wid))

    if state.notified:
        actions.append(Action("start_workers"))
    return actions


def at_rest(state: State, config: Config, actions: list[Action] | None = None) -> bool:
    """The caller has closed or terminated the pool and the pool can do nothing more by itself:
    only caller actions and crashes are left. This is where `final_violations` applies; a final
    state (nothing enabled) is at rest. Pass `actions` if you have computed them already."""
    if actions is None:
        actions = enabled_actions(state, config)
    return state.pool != RUN and all(a.name in CALLER_ACTIONS | FAULT_ACTIONS for a in actions)


# --- the parent's side: the roster, as Roster changes it under `cond` ---------------


class _Roster:
    """A mutable copy of the roster and `ready` for one step of the parent; `freeze` ends it."""

    def __init__(self, state: State, config: Config) -> None:
        self.config = config
        self.workers = list(state.workers)
        self.ready = list(state.ready)
        self.closing = state.closing
        self.sentinels_sent: list[int] = []  # in this step, in order (for one_sentinel_too_few)

    def freeze(self, state: State) -> State:
        return state._replace(workers=tuple(self.workers), ready=tuple(self.ready), closing=self.closing)

    def get(self, wid: int) -> Worker:
        return next(w for w in self.workers if w.wid == wid)

    def placed(self, task: int) -> bool:
        """The task waits in `ready` or is held by a worker."""
        return task in self.ready or any(t == task for w in self.workers for _, t in w.held)

    def put(self, worker: Worker) -> Worker:
        self.workers = [worker if w.wid == worker.wid else w for w in self.workers]
        return worker

    def hold(self, worker: Worker, task: int) -> Worker:
        """Record that the worker holds the task (WORK-3), and send it."""
        number = worker.last_number + 1
        inbox = (*worker.inbox, (number, task)) if worker.alive else ()  # a dead worker's is lost
        return self.put(
            worker._replace(
                last_number=number, held=(*worker.held, (number, task)), handed=worker.handed + 1, inbox=inbox
            )
        )

    def least_busy(self) -> Worker | None:
        best: Worker | None = None
        for w in self.workers:
            if can_take(w, self.config) and (best is None or len(w.held) < len(best.held)):
                best = w
        return best

    def fill(self) -> None:
        """Hand ready tasks out one at a time, each to the least busy worker that can take it."""
        while self.ready:
            worker = self.least_busy()
            if worker is None:
                return
            self.hold(worker, self.ready.pop(0))

    def serve_all(self) -> None:
        """Roster.serve_all: fill, then serve each worker, least busy first."""
        self.fill()
        for wid in [w.wid for w in sorted(self.workers, key=lambda w: len(w.held))]:
            self.serve(wid)

    def serve(self, wid: int) -> None:
        """Roster._serve: ready tasks; if it is idle and none is ready, tasks taken back from a busy
        worker; if there are none either and the pool is closing, its sentinel."""
        worker = self.get(wid)
        if worker.exited or worker.sentinels:
            return
        while self.ready and can_take(worker, self.config):
            worker = self.hold(worker, self.ready.pop(0))
        if worker.held or self.ready or retiring(worker, self.config):
            return
        if self.rebalance(wid):
            return
        if self.closing:
            self.sentinels_sent.append(wid)
            inbox = (*worker.inbox, SENTINEL) if worker.alive else ()
            self.put(worker._replace(sentinels=worker.sentinels + 1, inbox=inbox))

    def rebalance(self, idle_wid: int) -> bool:
        """Take back the unstarted tasks of the busiest worker that has some, and hand them out."""
        if "no_take_back" in self.config.bugs:
            return False
        busy = sorted(
            (w for w in self.workers if w.wid != idle_wid and len(w.held) >= 2),
            key=lambda w: len(w.held),
            reverse=True,
        )
        for victim in busy:
            back = self.take_back(victim)
            if back:
                self.ready[:0] = back
                self.fill()
                return True
        return False

    def take_back(self, victim: Worker) -> list[int]:
        """Under the claim word's lock: read `claimed`, set `revoked` to the last number sent; every
        held task numbered above `claimed` is the parent's again (WORK-6)."""
        back = [task for number, task in victim.held if number > victim.claimed]
        kept = tuple((number, task) for number, task in victim.held if number <= victim.claimed)
        self.put(
            victim._replace(
                revoked=max(victim.revoked, victim.last_number),
                held=kept,
                handed=victim.handed - len(back),
                # As Roster._take_back: one that finds nothing leaves the victim as it was.
                stalled=bool(kept) if back else victim.stalled,
            )
        )
        return back


# --- transitions ----------------------------------------------------------


def _settle(settled: tuple[tuple[str, ...], ...], task: int, how: str) -> tuple[tuple[str, ...], ...]:
    ways = list(settled)
    ways[task] = (*ways[task], how)
    return tuple(ways)


Endings = tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]  # (settled, job_settled)


def _end(state: State, task: int, how: str, config: Config, endings: Endings | None = None) -> Endings:
    """The task ends `how`, and JobCache.deliver tells its job: a job not settled yet settles at its
    first failed task (jobs.chunk_done) or when its last task has succeeded; one that has settled
    (cancelled, say) ignores it. `endings`: the result of an earlier `_end` in the same step."""
    settled, job_settled = (state.settled, state.job_settled) if endings is None else endings
    settled = _settle(settled, task, how)
    job = config.job_of[task]
    if not job_settled[job] and (how != "ok" or all("ok" in settled[t] for t in config.job_tasks[job])):
        job_settled = _settle(job_settled, job, how)
    return settled, job_settled


def _replace_worker(state: State, worker: Worker) -> tuple[Worker, ...]:
    return tuple(worker if w.wid == worker.wid else w for w in state.workers)


def _worker(state: State, wid: int | None) -> Worker:
    return next(w for w in state.workers if w.wid == wid)


def _exited(worker: Worker) -> Worker:
    # What is still in its inbox is never read; the claim word keeps its counters.
    return worker._replace(alive=False, inbox=(), running=None, checked=False)


def _submit(state: State, action: Action, config: Config) -> State:
    return state._replace(submitted=state.submitted + 1)


def _close(state: State, action: Action, config: Config) -> State:
    return state._replace(pool=CLOSE)


def _terminate(state: State, action: Action, config: Config) -> State:
    """Kill every worker, start none, fail every unsettled task and job (SHUT-5)."""
    settled = tuple(
        (ways or ("terminated",)) if task < state.submitted else ways
        for task, ways in enumerate(state.settled)
    )
    job_settled = state.job_settled
    if not all(job_settled):
        job_settled = tuple(
            (ways or ("terminated",)) if tasks and tasks.start < state.submitted else ways
            for ways, tasks in zip(job_settled, config.job_tasks, strict=True)
        )
    # Nothing happens after this but join(): of each worker, keep only what the invariants read.
    killed = tuple(_fresh_worker(w.wid, False, w.handed, w.sentinels) for w in state.workers)
    return state._replace(
        pool=TERMINATE, workers=killed, ready=(), settled=settled, job_settled=job_settled, notified=False
    )


def _join(state: State, action: Action, config: Config) -> State:
    return state._replace(joined=True)


def _offer(state: State, action: Action, config: Config) -> State:
    """Roster.offer: to the least busy worker that can take it if nothing is ready, else to `ready`;
    a task of a cancelled job is dropped (it ended with its job's cancel, CANCEL-1)."""
    if config.max_cancels and cancelled(state, config.job_of[state.offered]):
        return state._replace(offered=state.offered + 1)
    roster = _Roster(state, config)
    worker = None if roster.ready else roster.least_busy()
    if worker is None:
        roster.ready.append(state.offered)
    else:
        roster.hold(worker, state.offered)
    return roster.freeze(state)._replace(offered=state.offered + 1)


def _begin_closing(state: State, action: Action, config: Config) -> State:
    """Roster.begin_closing: every task has been offered; idle workers get their sentinels."""
    roster = _Roster(state, config)
    roster.closing = True
    roster.serve_all()
    if "one_sentinel_too_few" in config.bugs and roster.sentinels_sent:
        w = roster.get(roster.sentinels_sent[-1])
        roster.put(w._replace(sentinels=w.sentinels - 1, inbox=w.inbox[:-1]))
    return roster.freeze(state)


def _claim(state: State, action: Action, config: Config) -> State:
    """The worker claims its next task: `claimed` = its number; it starts it (WORK-6)."""
    w = _worker(state, action.worker)
    head = w.inbox[0]
    assert not isinstance(head, str), "a claim of the sentinel"
    number, task = head
    w = w._replace(inbox=w.inbox[1:], claimed=number, running=task, checked=False)
    started = list(state.started)
    started[task] = min(started[task] + 1, 2)  # twice is once too many; more would be endless states
    late = ("CANCEL-1", task)  # a task of a cancelled job starts
    if config.max_cancels and cancelled(state, config.job_of[task]) and late not in state.wrongs:
        state = state._replace(wrongs=(*state.wrongs, late))
    return state._replace(workers=_replace_worker(state, w), started=tuple(started))


def _read_revoked(state: State, action: Action, config: Config) -> State:
    """claim_without_lock: the first half of a claim, `revoked` read and found below the number."""
    w = _worker(state, action.worker)
    return state._replace(workers=_replace_worker(state, w._replace(checked=True)))


def _skip(state: State, action: Action, config: Config) -> State:
    """The worker's next task is numbered <= `revoked`: taken back, it runs elsewhere (WORK-6)."""
    w = _worker(state, action.worker)
    return state._replace(workers=_replace_worker(state, w._replace(inbox=w.inbox[1:])))


def _run(state: State, action: Action, config: Config) -> State:
    """Run the claimed task and send its outcome; exit after maxtasksperchild tasks (WORK-4)."""
    w = _worker(state, action.worker)
    assert w.running is not None
    w = w._replace(running=None, outbox=(*w.outbox, w.running), done=w.done + 1)
    if config.maxtasks is not None and w.done >= config.maxtasks:
        w = _exited(w)
    return state._replace(workers=_replace_worker(state, w))


def _exit(state: State, action: Action, config: Config) -> State:
    return state._replace(workers=_replace_worker(state, _exited(_worker(state, action.worker))))


def _crash(state: State, action: Action, config: Config) -> State:
    w = _exited(_worker(state, action.worker))
    return state._replace(workers=_replace_worker(state, w), crashes=state.crashes + 1)


def _read_outcome(state: State, action: Action, config: Config) -> State:
    """Roster.settle: free the worker's hold on the task, serve the worker; settle the task."""
    w = _worker(state, action.worker)
    task = w.outbox[0]
    held = tuple(h for h in w.held if h[1] != task)
    roster = _Roster(state, config)
    w = roster.put(w._replace(outbox=w.outbox[1:], held=held, stalled=w.stalled and bool(held)))
    if not w.exited:
        roster.serve(w.wid)
    settled, job_settled = _end(state, task, "ok", config)
    return roster.freeze(state)._replace(settled=settled, job_settled=job_settled)


def _see_exit(state: State, action: Action, config: Config) -> State:
    """Roster.exited: the worker is seen to have exited; reading what it sent frees it for nothing new."""
    w = _worker(state, action.worker)
    return state._replace(workers=_replace_worker(state, w._replace(exited=True)))


def _reap(state: State, action: Action, config: Config) -> State:
    """Roster.reap: the oldest task it held fails (LOST-1), as "timeout" if it is the task the
    worker was killed for (TIME-2); the ones behind it never started and go to the front of
    `ready` (LOST-3); serve every worker; tell the worker handler."""
    w = _worker(state, action.worker)
    tasks = [task for _, task in w.held]
    lost, requeued = tasks[:1], tasks[1:]
    if "drop_task_on_crash" in config.bugs:
        lost = []
    if "fail_all_on_crash" in config.bugs:
        lost, requeued = tasks, []
    roster = _Roster(state, config)
    roster.workers = [x for x in roster.workers if x.wid != w.wid]
    roster.ready[:0] = requeued
    roster.serve_all()
    endings = state.settled, state.job_settled
    for task in lost:
        endings = _end(state, task, "timeout" if task == w.expired else "lost", config, endings)
    lost_at_once = max(state.lost_at_once, len(lost)) if len(lost) > 1 else state.lost_at_once
    notified = "reap_not_reported" not in config.bugs
    return roster.freeze(state)._replace(
        settled=endings[0], job_settled=endings[1], notified=notified, lost_at_once=lost_at_once
    )


def _start_workers(state: State, action: Action, config: Config) -> State:
    """WorkerHandler.maintain: start what `workers_to_start` allows, then serve every worker."""
    allowed = _workers_to_start(state, config)
    missing = allowed
    if "start_after_close" in config.bugs and state.pool != TERMINATE:
        missing = config.workers - len(state.workers)
    roster = _Roster(state, config)
    taken = {w.wid for w in state.workers}
    free = (wid for wid in range(config.workers + len(taken)) if wid not in taken)
    roster.workers += [_fresh_worker(next(free)) for _ in range(missing)]
    roster.serve_all()
    late_starts = max(state.late_starts, missing - allowed)  # the most at once: the state space stays finite
    return roster.freeze(state)._replace(notified=False, late_starts=late_starts)


def _cancel(state: State, action: Action, config: Config) -> State:
    """Roster.cancel, with the job's settling (CANCEL-1, CANCEL-3): drop the job's ready tasks;
    take back from every worker that holds one of its tasks; drop the job's tasks taken back, put
    the others at the front of `ready`; serve every worker. The job settles as cancelled, and its
    tasks that never started, the ones the task handler has not offered included, end with it."""
    job = action.job
    assert job is not None
    mine = config.job_tasks[job]
    roster = _Roster(state, config)
    dropped = [task for task in roster.ready if task in mine]
    roster.ready = [task for task in roster.ready if task not in mine]
    others: list[int] = []
    if "cancel_leaves_inbox" not in config.bugs:
        for wid in [w.wid for w in roster.workers]:
            victim = roster.get(wid)
            if not any(task in mine for _, task in victim.held):
                continue
            back = roster.take_back(victim)
            dropped += [task for task in back if task in mine]
            theirs = [task for task in back if task not in mine]
            others += theirs
            if "cancel_drops_others" not in config.bugs:
                roster.ready[:0] = theirs  # as Roster.cancel's extendleft: each victim's go first
    roster.serve_all()
    queued = [task for task in mine if state.offered <= task < state.submitted]  # never offered now
    settled = state.settled
    for task in (*dropped, *queued):
        settled = _settle(settled, task, "cancelled")
    wrongs = state.wrongs + tuple(("CANCEL-3", task) for task in others if not roster.placed(task))
    return roster.freeze(state)._replace(
        settled=settled, job_settled=_settle(state.job_settled, job, "cancelled"), wrongs=wrongs
    )


def _expire(state: State, action: Action, config: Config) -> State:
    """Roster.expire_due and _stop_for_timeout (TIME-2): the task has run past its time. Take back
    the worker's unstarted tasks (to the front of `ready`); if `claimed` is still the task's number,
    kill the worker and record it as exited, so that it is handed nothing more; serve every worker.
    The task fails as "timeout" when the worker is reaped, if it still holds it."""
    wid, timed = action.worker, action.task
    assert wid is not None and timed is not None
    roster = _Roster(state, config)
    victim = roster.get(wid)
    number = next(n for n, task in victim.held if task == timed)
    back = roster.take_back(victim)
    victim = roster.get(wid)
    if "timeout_requeues_running" in config.bugs and victim.claimed == number:
        held = tuple(h for h in victim.held if h[1] != timed)
        victim = roster.put(victim._replace(held=held, handed=victim.handed - 1, stalled=bool(held)))
        back = [timed, *back]
    roster.ready[:0] = back
    if victim.claimed == number:
        killed = _exited(victim)._replace(expired=timed)
        roster.put(killed if "expiry_keeps_worker" in config.bugs else killed._replace(exited=True))
        roster.serve_all()
    elif "expiry_serves_only_kills" not in config.bugs:
        roster.serve_all()
    wrongs = state.wrongs + tuple(("TIME-2", task) for task in back if not roster.placed(task))
    return roster.freeze(state)._replace(expiries=state.expiries + 1, wrongs=wrongs)


def _take_result(state: State, action: Action, config: Config) -> State:
    """IMapResults.next: take the next result, then InputFeed.took_one: draw one more task while
    fewer than `buffersize` drawn tasks have results not taken, and the pool runs (BUF-1, BUF-4)."""
    assert config.buffersize is not None
    taken, drawn = state.taken + 1, state.submitted
    feeds = "refill_before_take" not in config.bugs and state.pool == RUN and drawn < config.tasks
    if feeds and drawn - taken < config.buffersize:  # buffered.may_draw
        drawn += 1
    return state._replace(taken=taken, submitted=drawn)


def _draw(state: State, action: Action, config: Config) -> State:
    """refill_before_take: the consumer draws a task before it takes the result it waits for."""
    return state._replace(submitted=state.submitted + 1)


Transition = Callable[[State, Action, Config], State]

TRANSITIONS: Final[dict[str, Transition]] = {
    "submit": _submit,
    "close": _close,
    "terminate": _terminate,
    "join": _join,
    "offer": _offer,
    "begin_closing": _begin_closing,
    "claim": _claim,
    "read_revoked": _read_revoked,
    "skip": _skip,
    "run": _run,
    "exit": _exit,
    "crash": _crash,
    "read_outcome": _read_outcome,
    "see_exit": _see_exit,
    "reap": _reap,
    "start_workers": _start_workers,
    "cancel": _cancel,
    "expire": _expire,
    "take_result": _take_result,
    "draw": _draw,
}


def successor(state: State, action: Action, config: Config) -> State:
    """`step` without checking that the action is enabled: for explorers, which only take enabled ones."""
    return TRANSITIONS[action.name](state, action, config)


def step(state: State, action: Action, config: Config) -> State:
    """Take one enabled action. An action that is not enabled raises ValueError naming it."""
    if action not in enabled_actions(state, config):
        raise ValueError(f"{action} is not enabled in {state}")
    return successor(state, action, config)


# --- invariants: in every reachable state ------------------------------------
# Invariants (spec clause IDs):
# WORK-1 the roster never has more than `workers` workers, and has exactly that many whenever
#        the pool may grow and no reaped worker is waiting to be replaced;
# WORK-2 no worker starts after terminate, and once closing no more than there are ready tasks;
# WORK-3 each task is held by at most one worker; each handed-out unsettled task not in `ready`
#        by exactly one; a live worker has every task it holds in its inbox, running or in its
#        outbox; a worker holds at most `depth` tasks and is handed at most maxtasks, net;
# WORK-5 a task waits in `ready` only while no worker can take it; while a worker is idle,
#        every task another worker holds, other than its oldest, has been claimed;
# WORK-6 no task starts twice; a task in `ready` (taken back, or left by a dead worker,
#        LOST-3) has not started;
# LOST-3 a worker's death fails at most one task, and a clean exit none; once all a dead worker
#        sent has been read, no task it holds behind its oldest has started;
# SHUT-1 a sentinel goes only to a worker that holds nothing, once the pool is closing (closed,
#        every task offered), and no task follows it;
# SHUT-2 no worker is sent two sentinels, nor one it does not need (it retires by maxtasks);
#        once closing, every idle worker has been sent its sentinel;
# JOB-1  no task is settled twice, and none before it was submitted; no job settles twice;
# BUF-1  a buffered imap has drawn at most `buffersize` tasks whose results have not been taken;
# CANCEL-1 once a job is cancelled, none of its tasks waits in `ready`, none is held unstarted
#        by a worker, and none starts; it settled as cancelled and nothing settles it again;
# CANCEL-3 the other jobs' tasks taken back at a cancel wait in `ready` or are held (and then,
#        by WORK-3, WORK-6 and JOB-1, run once and end once); no task of another job is dropped;
# TIME-2 the task a worker was killed for is never in `ready` nor held by another worker (so it
#        runs at most once: WORK-6), and no more tasks time out than workers were killed; the
#        tasks taken back at an expiry wait in `ready` or are held, as CANCEL-3's.


def _work_1(state: State, config: Config) -> list[str]:
    count = len(state.workers)
    if count > config.workers:
        return [f"WORK-1: {count} workers in the roster, more than processes={config.workers}"]
    if may_grow(state) and not state.notified and count != config.workers:
        return [
            f"WORK-1: the pool may grow and no replacement is pending, "
            f"yet it has {count} workers, not {config.workers}"
        ]
    return []


def _work_2(state: State, config: Config) -> list[str]:
    if state.late_starts:
        return [
            f"WORK-2: the worker handler started {state.late_starts} worker(s) more than allowed: "
            f"none after terminate, and once closing no more than the tasks that wait in ready"
        ]
    return []


def _work_3(state: State, config: Config) -> list[str]:
    found = []
    holders: dict[int, list[int]] = {}
    for w in state.workers:
        for _, task in w.held:
            holders.setdefault(task, []).append(w.wid)
    for task in range(state.submitted):
        held_by = holders.get(task, [])
        waiting = task in state.ready
        if len(held_by) > 1:
            found.append(f"WORK-3: task {task} is held by workers {held_by}")
        if task < state.offered and not state.settled[task] and not waiting and len(held_by) != 1:
            found.append(f"WORK-3: task {task} is handed out and unsettled but held by workers {held_by}")
        if (state.settled[task] or waiting) and held_by:
            where = "settled" if state.settled[task] else "in ready"
            found.append(f"WORK-3: task {task} is {where}, yet held by workers {held_by}")
    for w in state.workers:
        if len(w.held) > config.depth:
            found.append(f"WORK-3: worker {w.wid} holds {len(w.held)} tasks, more than depth={config.depth}")
        if config.maxtasks is not None and w.handed > config.maxtasks:
            found.append(f"WORK-3: worker {w.wid} was handed {w.handed} tasks, maxtasks={config.maxtasks}")
        if w.alive:
            carried = {item[1] for item in w.inbox if isinstance(item, tuple)} | set(w.outbox)
            missing = [task for _, task in w.held if task not in carried and task != w.running]
            if missing:
                found.append(f"WORK-3: worker {w.wid} holds tasks {missing} it was never sent")
    return found


def _work_5(state: State, config: Config) -> list[str]:
    if state.pool == TERMINATE:
        return []
    found = []
    if state.ready:
        takers = [w.wid for w in state.workers if can_take(w, config)]
        if takers:
            found.append(
                f"WORK-5: tasks {list(state.ready)} wait in ready, yet workers {takers} can take them"
            )
    for w in state.workers:
        if not idle(w, config):
            continue
        for other in state.workers:
            behind = [task for number, task in other.held[1:] if number > other.claimed]
            if behind:
                found.append(
                    f"WORK-5: worker {w.wid} is idle while worker {other.wid} holds tasks {behind} "
                    f"unstarted behind its oldest"
                )
    return found


def _work_6(state: State, config: Config) -> list[str]:
    found = [f"WORK-6: task {task} started twice" for task, n in enumerate(state.started) if n > 1]
    found += [
        f"WORK-6: task {task} waits in ready to be handed out again, but it has started"
        for task in state.ready
        if state.started[task]
    ]
    return found


def _lost_3(state: State, config: Config) -> list[str]:
    found = []
    if state.lost_at_once:
        found.append(f"LOST-3: one worker's death failed {state.lost_at_once} tasks; it may fail one")
    lost = sum(ways.count("lost") for ways in state.settled)
    if lost > state.crashes:
        killed = " (a worker killed past its time fails its task as timeout, none as lost)"
        found.append(
            f"LOST-3: {lost} tasks failed as lost, but {state.crashes} worker(s) died: "
            f"a death fails at most one task, and a worker that exits by itself none"
            f"{killed if state.expiries else ''}"
        )
    for w in state.workers:
        if not w.alive and not w.outbox:
            behind = [task for _, task in w.held[1:] if state.started[task]]
            if behind:
                found.append(
                    f"LOST-3: worker {w.wid} has exited and all it sent has been read, yet tasks "
                    f"{behind} it holds behind its oldest have started"
                )
    return found


def _shut_1(state: State, config: Config) -> list[str]:
    found = []
    if state.closing and (state.pool == RUN or state.offered < state.submitted):
        found.append(
            f"SHUT-1: closing in {state.pool} with {state.offered} of {state.submitted} tasks offered"
        )
    for w in state.workers:
        if not w.sentinels:
            continue
        if not state.closing:
            found.append(f"SHUT-1: worker {w.wid} was sent a sentinel before the pool was closing")
        if w.held:
            found.append(f"SHUT-1: worker {w.wid} was sent a sentinel, yet holds tasks {list(w.held)}")
        if SENTINEL in w.inbox and w.inbox[-1] != SENTINEL:
            found.append(f"SHUT-1: worker {w.wid} has a task behind its sentinel: {w.inbox}")
    return found


def _shut_2(state: State, config: Config) -> list[str]:
    found = []
    for w in state.workers:
        if w.sentinels > 1:
            found.append(f"SHUT-2: worker {w.wid} was sent {w.sentinels} sentinels")
        if w.sentinels and retiring(w, config):
            found.append(
                f"SHUT-2: worker {w.wid} was sent a sentinel, but it retires by itself "
                f"(handed {w.handed} tasks, maxtasks={config.maxtasks})"
            )
        if state.closing and state.pool != TERMINATE and idle(w, config):
            found.append(f"SHUT-2: the pool is closing and worker {w.wid} is idle, but has no sentinel")
    return found


def _job_1(state: State, config: Config) -> list[str]:
    found = []
    for task, ways in enumerate(state.settled):
        if len(ways) > 1:
            found.append(f"JOB-1: task {task} settled {len(ways)} times: {', '.join(ways)}")
        if ways and task >= state.submitted:
            found.append(f"JOB-1: task {task} settled before it was submitted")
    for job, ways in enumerate(state.job_settled):
        if len(ways) > 1:
            found.append(f"JOB-1: job {job} settled {len(ways)} times: {', '.join(ways)}")
    return found


def _buf_1(state: State, config: Config) -> list[str]:
    if config.buffersize is None or state.submitted - state.taken <= config.buffersize:
        return []
    return [
        f"BUF-1: {state.submitted} tasks drawn and {state.taken} results taken: "
        f"{state.submitted - state.taken} drawn tasks' results are not taken, "
        f"more than buffersize={config.buffersize}"
    ]


def _cancel_1(state: State, config: Config) -> list[str]:
    if not config.max_cancels:
        return []
    found = [
        f"CANCEL-1: task {task} started after its job {config.job_of[task]} was cancelled"
        for clause, task in state.wrongs
        if clause == "CANCEL-1"
    ]
    for job, mine in enumerate(config.job_tasks):
        if not cancelled(state, job):
            continue
        waiting = [task for task in state.ready if task in mine]
        if waiting:
            found.append(f"CANCEL-1: job {job} was cancelled, yet its tasks {waiting} wait in ready")
        for w in state.workers:
            unstarted = [task for number, task in w.held if task in mine and number > w.claimed]
            if unstarted:
                found.append(
                    f"CANCEL-1: job {job} was cancelled, yet worker {w.wid} holds its tasks {unstarted}, "
                    f"not started"
                )
    return found


def _cancel_3(state: State, config: Config) -> list[str]:
    if not config.max_cancels:
        return []
    found = [
        f"CANCEL-3: task {task} of job {config.job_of[task]}, taken back at a cancel of another job, "
        f"neither waits in ready nor is held"
        for clause, task in state.wrongs
        if clause == "CANCEL-3"
    ]
    found += [
        f"CANCEL-3: task {task} was dropped as cancelled, but its job {config.job_of[task]} was not cancelled"
        for task, ways in enumerate(state.settled)
        if "cancelled" in ways and not cancelled(state, config.job_of[task])
    ]
    return found


def _time_2(state: State, config: Config) -> list[str]:
    if not config.max_expiries:
        return []
    found = [
        f"TIME-2: task {task}, taken back at an expiry, neither waits in ready nor is held"
        for clause, task in state.wrongs
        if clause == "TIME-2"
    ]
    for w in state.workers:
        if w.expired is None:
            continue
        if w.expired in state.ready:
            found.append(
                f"TIME-2: task {w.expired} ran past its time and worker {w.wid} was killed for it, "
                f"yet it waits in ready to run again"
            )
        holders = [x.wid for x in state.workers if x.wid != w.wid and any(t == w.expired for _, t in x.held)]
        if holders:
            found.append(
                f"TIME-2: task {w.expired} ran past its time and worker {w.wid} was killed for it, "
                f"yet workers {holders} hold it, to run it again"
            )
    timeouts = sum(ways.count("timeout") for ways in state.settled)
    if timeouts > state.expiries:
        found.append(f"TIME-2: {timeouts} tasks timed out, but the timekeeper acted {state.expiries} times")
    return found


# The newer clauses first: where a step breaks one of them and an older one at once (a task taken
# back and dropped is also held by nobody, WORK-3), the counterexample names the more precise one.
INVARIANTS: Final[tuple[Callable[[State, Config], list[str]], ...]] = (
    _buf_1,
    _cancel_1,
    _cancel_3,
    _time_2,
    _work_1,
    _work_2,
    _work_3,
    _work_5,
    _work_6,
    _lost_3,
    _shut_1,
    _shut_2,
    _job_1,
)


def invariant_violations(state: State, config: Config) -> list[str]:
    """What `state` breaks of the invariants above; each message starts with its clause ID."""
    return [message for check in INVARIANTS for message in check(state, config)]


# --- final properties: once the pool is at rest --------------------------------


def final_violations(state: State, config: Config) -> list[str]:
    """What must hold once the pool is at rest (see `at_rest`); each message starts with its clause ID.

    SHUT-4: join() can return, i.e. this is no deadlock; SHUT-3: every worker has exited;
    JOB-1: every submitted task has settled, and every job all of whose tasks were submitted
    (exactly once is an invariant). A buffered imap closed before its input ended has tasks that
    were never drawn: its iterator ends with UnreadInputError, which is not modelled.
    """
    found = []
    if not (state.joined or finished(state)):
        alive = [w.wid for w in state.workers if w.alive]
        found.append(
            f"SHUT-4: deadlock: the pool is {state.pool} and can do nothing more, but join() "
            f"would wait for workers {[w.wid for w in state.workers]} (alive: {alive}) "
            f"and ready tasks {list(state.ready)}"
        )
    found += [f"SHUT-3: worker {w.wid} never exits" for w in state.workers if w.alive]
    found += [f"JOB-1: task {t} never settles" for t in range(state.submitted) if not state.settled[t]]
    found += [
        f"JOB-1: job {job} never settles"
        for job, tasks in enumerate(config.job_tasks)
        if tasks and tasks.stop <= state.submitted and not state.job_settled[job]
    ]
    return found
