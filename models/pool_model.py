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
    task handler:    offer(task)         the next submitted task, in order, to the least busy
                                         worker that can take it, or to the back of `ready`
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

Public API (the tests reuse it): `Config`, `initial_state`, `enabled_actions`,
`step`, `successor`, `invariant_violations`, `at_rest`, `final_violations`,
the predicates `can_take`, `retiring`, `idle`, `may_grow`, `finished`, and the
records `State`, `Worker`, `Action`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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
        "fail_all_on_crash",  # reaping a dead worker fails every task it held, not just the oldest
        "claim_without_lock",  # the worker reads `revoked` and sets `claimed` in two steps
        "take_back_without_skip",  # the worker runs a task numbered <= `revoked` instead of skipping it
        "no_take_back",  # a worker that becomes idle takes back nothing from a busy one
    }
)

CALLER_ACTIONS: Final = frozenset({"submit", "close", "terminate", "join"})
FAULT_ACTIONS: Final = frozenset({"crash"})


@dataclass(frozen=True)
class Config:
    """The bounds of one model run.

    workers: `processes`; tasks: how many tasks the caller submits; max_crashes:
    how many worker crashes may happen in a run; maxtasks: `maxtasksperchild`;
    depth: how many tasks a worker holds at most (refpool: 8);
    allow_terminate: whether the caller may call terminate(); submit_upfront:
    the tasks are all submitted before anything else happens (else `submit` is
    a caller action, allowed while RUN); bugs: names from BUGS to seed.
    """

    workers: int = 2
    tasks: int = 2
    max_crashes: int = 0
    maxtasks: int | None = None
    depth: int = 2
    allow_terminate: bool = True
    submit_upfront: bool = True
    bugs: frozenset[str] = frozenset()

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
    exited: bool  # the parent has seen it gone; what it sent may still be read


class State(NamedTuple):
    pool: str  # RUN, CLOSE or TERMINATE
    submitted: int  # tasks 0 .. submitted-1 are in the task queue or beyond
    offered: int  # tasks 0 .. offered-1 have been offered: handed out, or put in `ready`
    ready: tuple[int, ...]  # tasks that wait for a worker that can take them, in order
    closing: bool  # closed, and every task offered: idle workers get their sentinels
    notified: bool  # a worker was reaped and the worker handler has not acted on it yet
    workers: tuple[Worker, ...]  # the roster, in the order the workers joined it
    started: tuple[int, ...]  # per task: how many times a worker has claimed it (WORK-6)
    settled: tuple[tuple[str, ...], ...]  # per task, each way it ended: "ok", "lost", "terminated"
    crashes: int
    late_starts: int  # the most workers one start_workers started beyond what WORK-1 and WORK-2 allow
    lost_at_once: int  # the tasks one worker's death failed, if more than one (LOST-3); else 0
    joined: bool


class Action(NamedTuple):
    """One atomic step, e.g. `Action("read_outcome", worker=1, task=0)`."""

    name: str
    worker: int | None = None
    task: int | None = None

    def __str__(self) -> str:
        args = [f"{field}={value}" for field, value in (("worker", self.worker), ("task", self.task))]
        return f"{self.name}({', '.join(a for a in args if not a.endswith('None'))})"


def _fresh_worker(wid: int, alive: bool = True, handed: int = 0, sentinels: int = 0) -> Worker:
    # Positional, in field order: this runs for every state (_terminate), and _replace is slow.
    return Worker(wid, alive, (), None, False, (), 0, 0, 0, (), 0, handed, False, sentinels, False)


def initial_state(config: Config) -> State:
    """A constructed pool: RUN, with `workers` workers started (LIFE-1)."""
    return State(
        pool=RUN,
        submitted=config.tasks if config.submit_upfront else 0,
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


def enabled_actions(state: State, config: Config) -> list[Action]:
    """Every action that can happen next, in a fixed order: caller, task handler, workers, result
    handler, worker handler. Empty exactly in a final state."""
    if state.joined:
        return []
    actions: list[Action] = []
    if state.pool == RUN:
        if state.submitted < config.tasks:
            actions.append(Action("submit", task=state.submitted))
        actions.append(Action("close"))
    if config.allow_terminate and state.pool != TERMINATE:
        actions.append(Action("terminate"))
    if state.pool != RUN and finished(state):
        actions.append(Action("join"))
    if state.pool == TERMINATE:
        return actions  # every handler has stopped and every worker is dead

    if state.offered < state.submitted:
        actions.append(Action("offer", task=state.offered))
    elif state.pool == CLOSE and not state.closing:
        actions.append(Action("begin_closing"))

    for w in state.workers:
        actions.extend(_worker_actions(w, config))
        if w.alive and state.crashes < config.max_crashes:
            actions.append(Action("crash", w.wid))

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
    """Kill every worker, start none, fail every unsettled task (SHUT-5)."""
    settled = tuple(
        (ways or ("terminated",)) if task < state.submitted else ways
        for task, ways in enumerate(state.settled)
    )
    # Nothing happens after this but join(): of each worker, keep only what the invariants read.
    killed = tuple(_fresh_worker(w.wid, False, w.handed, w.sentinels) for w in state.workers)
    return state._replace(pool=TERMINATE, workers=killed, ready=(), settled=settled, notified=False)


def _join(state: State, action: Action, config: Config) -> State:
    return state._replace(joined=True)


def _offer(state: State, action: Action, config: Config) -> State:
    """Roster.offer: to the least busy worker that can take it if nothing is ready, else to `ready`."""
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
    return roster.freeze(state)._replace(settled=_settle(state.settled, task, "ok"))


def _see_exit(state: State, action: Action, config: Config) -> State:
    """Roster.exited: the worker is seen gone; reading what it sent frees it for nothing new."""
    w = _worker(state, action.worker)
    return state._replace(workers=_replace_worker(state, w._replace(exited=True)))


def _reap(state: State, action: Action, config: Config) -> State:
    """Roster.remove: the oldest task it held fails (LOST-1); the ones behind it never started and
    go to the front of `ready` (LOST-3); serve every worker; tell the worker handler."""
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
    settled = state.settled
    for task in lost:
        settled = _settle(settled, task, "lost")
    lost_at_once = max(state.lost_at_once, len(lost)) if len(lost) > 1 else state.lost_at_once
    return roster.freeze(state)._replace(settled=settled, notified=True, lost_at_once=lost_at_once)


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
# JOB-1  no task is settled twice, and none before it was submitted.


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
        found.append(
            f"LOST-3: {lost} tasks failed as lost, but {state.crashes} worker(s) died: "
            f"a death fails at most one task, and a worker that exits by itself none"
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
    return found


INVARIANTS: Final[tuple[Callable[[State, Config], list[str]], ...]] = (
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
    JOB-1: every submitted task has settled (exactly once is an invariant).
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
    return found
