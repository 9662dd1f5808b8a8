"""The pool's design as a transition system: every state, every step, every invariant.

Theory of operation
-------------------
A state is an immutable snapshot of everything that matters for correctness
(spec/pool.md): the pool's lifecycle state, how far the task handler has got,
the roster of workers, what each worker has in its inbox and outbox, and how
each task ended. An *action* is one atomic step of one part of the pool, the
caller or the environment (a crash). `enabled_actions` says which steps can
happen next and `step` takes one; an explorer (models/explore.py) tries every
interleaving, and `invariant_violations` / `final_violations` say what must
hold. Each action is as atomic as the real code makes it: a step of the task
handler, result handler or worker handler is done under `Roster.cond` in
refpool, so nothing else interleaves with it.

    caller:          submit, close, terminate, join
    task handler:    hand_out(worker, task)   record the task as held, then send it (the
                                              result handler does the same for the worker an
                                              outcome frees, the worker handler for a worker
                                              it starts; see roster.py)
                     send_sentinels           after close and the last task (SHUT-1)
    worker:          run(worker)              take a task from the inbox, put its outcome
                     exit(worker)             take the sentinel and exit
                     crash(worker)            exit at any moment (at most max_crashes)
    result handler:  read_outcome(worker, task)
                     reap(worker)             an exited worker whose outbox is drained:
                                              fail what it held, tell the worker handler
    worker handler:  start_workers            back to `workers` live ones, if the pool may grow

Abstractions, on purpose:
- A worker holds at most one task (core.TASKS_IN_FLIGHT == 1).
- hand_out is one step, though refpool records the task under the roster's
  lock and writes it after: the worker's `writing` lock keeps its sentinel
  behind it, and the Promela model (models/pool.pml) checks that split.
  Which thread hands a task out, and the short `ready` queue of tasks that
  wait for a worker, are not modelled here.
- The parent cannot see a crash until the result handler reaps the worker, so
  the task handler may hand a task to a worker that has already exited; the
  task then fails with WorkerLostError when the worker is reaped (LOST-1).
- A worker's id is its slot: a replacement takes the lowest free id. This keeps
  the state space small; nothing in the design depends on ids.
- A message sent to an exited worker is lost, so an exited worker's inbox is
  always empty. Outcomes already sent stay in its outbox and are read before
  it is reaped (transport.py drains a dead worker's pipe first).
- terminate() is one atomic step: refpool stops the handlers, kills every
  worker and fails every unsettled task (SHUT-5) before it returns, and no
  handler acts once `Roster.terminating` is set.
- Process workers: a killed worker stops at once (a thread would finish its task).

Public API (the Hypothesis stateful tests and the conformance oracle reuse it):
`Config`, `initial_state`, `enabled_actions`, `step`, `invariant_violations`,
`at_rest`, `final_violations`, and the records `State`, `Worker`, `Action`.
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

SENTINEL: Final = "sentinel"  # in an inbox, beside task numbers

# Seeded bugs, each the kind of slip the real code guards against:
BUGS: Final = frozenset(
    {
        "one_sentinel_too_few",  # shutdown sends one sentinel fewer than needed
        "start_after_close",  # the worker handler still starts workers after shutdown began
        "drop_task_on_crash",  # reaping a dead worker forgets its task instead of failing it
    }
)

CALLER_ACTIONS: Final = frozenset({"submit", "close", "terminate", "join"})
FAULT_ACTIONS: Final = frozenset({"crash"})


@dataclass(frozen=True)
class Config:
    """The bounds of one model run.

    workers: `processes`; tasks: how many tasks the caller submits; max_crashes:
    how many worker crashes may happen in a run; maxtasks: `maxtasksperchild`;
    allow_terminate: whether the caller may call terminate(); submit_upfront:
    the tasks are all submitted before anything else happens (else `submit` is
    a caller action, allowed while RUN); bugs: names from BUGS to seed.
    """

    workers: int = 2
    tasks: int = 2
    max_crashes: int = 0
    maxtasks: int | None = None
    allow_terminate: bool = True
    submit_upfront: bool = True
    bugs: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.workers < 1 or self.tasks < 0 or self.max_crashes < 0:
            raise ValueError(
                f"bad bounds: workers={self.workers} tasks={self.tasks} max_crashes={self.max_crashes}"
            )
        if self.maxtasks is not None and self.maxtasks < 1:
            raise ValueError(f"maxtasks must be a positive int or None, not {self.maxtasks!r}")
        unknown = set(self.bugs) - BUGS
        if unknown:
            raise ValueError(f"unknown bugs {sorted(unknown)}; known: {sorted(BUGS)}")


class Worker(NamedTuple):
    """One worker in the roster: started, and not yet reaped by the result handler."""

    wid: int
    alive: bool  # False: it has exited, and the result handler has not reaped it yet
    held: int | None  # the parent's record: the task it holds (WORK-3: at most one)
    handed: int  # tasks handed to it in its life (maxtasksperchild, WORK-3)
    sentinels: int  # shutdown sentinels sent to it (SHUT-2: at most one)
    inbox: tuple[int | str, ...]  # FIFO of task numbers and SENTINEL; empty once exited
    outbox: tuple[int, ...]  # outcomes sent, not yet read by the result handler
    done: int  # tasks it has run: the worker's own count, for maxtasksperchild


class State(NamedTuple):
    pool: str  # RUN, CLOSE or TERMINATE
    submitted: int  # tasks 0 .. submitted-1 are in the task queue or beyond
    handed_out: int  # tasks 0 .. handed_out-1 have been handed out, in order
    shutdown_begun: bool  # the sentinels have been sent: no worker starts again
    notified: bool  # a worker was reaped and the worker handler has not acted on it yet
    workers: tuple[Worker, ...]  # the roster, by id
    settled: tuple[tuple[str, ...], ...]  # per task, each way it ended: "ok", "lost", "terminated"
    crashes: int
    late_starts: int  # workers started after shutdown began or after terminate (WORK-2)
    joined: bool


class Action(NamedTuple):
    """One atomic step, e.g. `Action("hand_out", worker=1, task=0)`."""

    name: str
    worker: int | None = None
    task: int | None = None

    def __str__(self) -> str:
        args = [f"{field}={value}" for field, value in (("worker", self.worker), ("task", self.task))]
        return f"{self.name}({', '.join(a for a in args if not a.endswith('None'))})"


def _fresh_worker(wid: int) -> Worker:
    return Worker(wid, alive=True, held=None, handed=0, sentinels=0, inbox=(), outbox=(), done=0)


def initial_state(config: Config) -> State:
    """A constructed pool: RUN, with `workers` workers started (LIFE-1)."""
    return State(
        pool=RUN,
        submitted=config.tasks if config.submit_upfront else 0,
        handed_out=0,
        shutdown_begun=False,
        notified=False,
        workers=tuple(_fresh_worker(wid) for wid in range(config.workers)),
        settled=((),) * config.tasks,
        crashes=0,
        late_starts=0,
        joined=False,
    )


# --- predicates the real code computes ----------------------------------


def retiring(worker: Worker, config: Config) -> bool:
    """It has been handed its maxtasksperchild tasks: it will exit by itself (Roster._retiring)."""
    return config.maxtasks is not None and worker.handed >= config.maxtasks


def can_take(worker: Worker, config: Config) -> bool:
    """Roster._can_take with depth 1. The parent cannot tell whether the worker is still alive."""
    return worker.held is None and not retiring(worker, config) and worker.sentinels == 0


def may_grow(state: State) -> bool:
    """RUN, or CLOSE before the sentinels are sent (spec, Words; WORK-2)."""
    return state.pool != TERMINATE and not state.shutdown_begun


def finished(state: State) -> bool:
    """join() can return: terminated, or shut down with every worker reaped (Roster.finished)."""
    return state.pool == TERMINATE or (state.shutdown_begun and not state.workers)


# --- enabled actions ------------------------------------------------------


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

    if state.handed_out < state.submitted:
        task = state.handed_out
        actions.extend(Action("hand_out", w.wid, task) for w in state.workers if can_take(w, config))
    elif state.pool == CLOSE and not state.shutdown_begun:
        actions.append(Action("send_sentinels"))

    for w in state.workers:
        if w.alive and w.inbox:
            actions.append(Action("exit" if w.inbox[0] == SENTINEL else "run", w.wid))
        if w.alive and state.crashes < config.max_crashes:
            actions.append(Action("crash", w.wid))

    for w in state.workers:
        if w.outbox:
            actions.append(Action("read_outcome", w.wid, w.outbox[0]))
        elif not w.alive:
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


# --- transitions ----------------------------------------------------------


def _settle(state: State, task: int, how: str) -> tuple[tuple[str, ...], ...]:
    settled = list(state.settled)
    settled[task] = (*settled[task], how)
    return tuple(settled)


def _replace_worker(state: State, worker: Worker) -> tuple[Worker, ...]:
    return tuple(worker if w.wid == worker.wid else w for w in state.workers)


def _worker(state: State, wid: int | None) -> Worker:
    return next(w for w in state.workers if w.wid == wid)


def _exited(worker: Worker) -> Worker:
    return worker._replace(alive=False, inbox=())  # what is still in its inbox is never read


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
    killed = tuple(_exited(w)._replace(held=None, outbox=()) for w in state.workers)
    return state._replace(pool=TERMINATE, workers=killed, settled=settled, notified=False)


def _join(state: State, action: Action, config: Config) -> State:
    return state._replace(joined=True)


def _hand_out(state: State, action: Action, config: Config) -> State:
    """Record the task as held by the worker, then send it (WORK-3)."""
    assert action.task is not None
    w = _worker(state, action.worker)
    inbox = (*w.inbox, action.task) if w.alive else ()
    w = w._replace(held=action.task, handed=w.handed + 1, inbox=inbox)
    return state._replace(workers=_replace_worker(state, w), handed_out=state.handed_out + 1)


def _send_sentinels(state: State, action: Action, config: Config) -> State:
    """One sentinel to each worker that will not exit by itself (Roster.begin_shutdown, SHUT-2)."""
    need = [w.wid for w in state.workers if not retiring(w, config) and w.sentinels == 0]
    if "one_sentinel_too_few" in config.bugs:
        need = need[:-1]

    def sent(w: Worker) -> Worker:
        inbox = (*w.inbox, SENTINEL) if w.alive else ()
        return w._replace(sentinels=w.sentinels + 1, inbox=inbox)

    workers = tuple(sent(w) if w.wid in need else w for w in state.workers)
    return state._replace(workers=workers, shutdown_begun=True)


def _run(state: State, action: Action, config: Config) -> State:
    """Take a task, run it, send its outcome; exit after maxtasksperchild tasks (WORK-4)."""
    w = _worker(state, action.worker)
    task = w.inbox[0]
    assert isinstance(task, int)
    w = w._replace(inbox=w.inbox[1:], outbox=(*w.outbox, task), done=w.done + 1)
    if config.maxtasks is not None and w.done >= config.maxtasks:
        w = _exited(w)
    return state._replace(workers=_replace_worker(state, w))


def _exit(state: State, action: Action, config: Config) -> State:
    return state._replace(workers=_replace_worker(state, _exited(_worker(state, action.worker))))


def _crash(state: State, action: Action, config: Config) -> State:
    w = _exited(_worker(state, action.worker))
    return state._replace(workers=_replace_worker(state, w), crashes=state.crashes + 1)


def _read_outcome(state: State, action: Action, config: Config) -> State:
    """Free the worker's hold on the task, then settle it (ResultHandler._on_outcome)."""
    w = _worker(state, action.worker)
    task = w.outbox[0]
    w = w._replace(outbox=w.outbox[1:], held=None if w.held == task else w.held)
    return state._replace(workers=_replace_worker(state, w), settled=_settle(state, task, "ok"))


def _reap(state: State, action: Action, config: Config) -> State:
    """Remove an exited worker, fail what it held (LOST-1), tell the worker handler."""
    w = _worker(state, action.worker)
    settled = state.settled
    if w.held is not None and "drop_task_on_crash" not in config.bugs:
        settled = _settle(state, w.held, "lost")
    workers = tuple(x for x in state.workers if x.wid != w.wid)
    return state._replace(workers=workers, settled=settled, notified=True)


def _start_workers(state: State, action: Action, config: Config) -> State:
    """Start workers until there are `workers` again, if the pool may grow (Roster.missing)."""
    allowed = may_grow(state) or ("start_after_close" in config.bugs and state.pool != TERMINATE)
    missing = config.workers - len(state.workers) if allowed else 0
    workers = list(state.workers)
    taken = {w.wid for w in workers}
    free = (wid for wid in range(config.workers + len(workers)) if wid not in taken)
    workers.extend(_fresh_worker(next(free)) for _ in range(missing))
    late = missing if not may_grow(state) else 0
    return state._replace(
        workers=tuple(sorted(workers)), notified=False, late_starts=state.late_starts + late
    )


Transition = Callable[[State, Action, Config], State]

TRANSITIONS: Final[dict[str, Transition]] = {
    "submit": _submit,
    "close": _close,
    "terminate": _terminate,
    "join": _join,
    "hand_out": _hand_out,
    "send_sentinels": _send_sentinels,
    "run": _run,
    "exit": _exit,
    "crash": _crash,
    "read_outcome": _read_outcome,
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
# WORK-2 no worker starts after the sentinels were sent or after terminate;
# WORK-3 each handed-out unsettled task is held by exactly one worker, and a task held by a worker
#        is in its inbox, running or in its outbox; no worker is handed more than maxtasks;
# SHUT-1 sentinels only after close and after the last task was handed out;
# SHUT-2 no worker is sent two sentinels; once shutdown began, exactly the workers that will not
#        exit by themselves have been sent one;
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
        return [f"WORK-2: {state.late_starts} worker(s) started after shutdown began or after terminate"]
    return []


def _work_3(state: State, config: Config) -> list[str]:
    found = []
    for task in range(state.submitted):
        holders = [w.wid for w in state.workers if w.held == task]
        handed = task < state.handed_out
        if handed and not state.settled[task] and len(holders) != 1:
            found.append(f"WORK-3: task {task} is handed out and unsettled but held by workers {holders}")
        if (state.settled[task] or not handed) and holders:
            found.append(f"WORK-3: task {task} is settled or not handed out, yet held by workers {holders}")
    for w in state.workers:
        carried = [t for t in (*w.inbox, *w.outbox) if t != SENTINEL]
        if any(t != w.held for t in carried) or len(carried) > 1:
            found.append(f"WORK-3: worker {w.wid} carries tasks {carried} but holds {w.held}")
        if config.maxtasks is not None and w.handed > config.maxtasks:
            found.append(f"WORK-3: worker {w.wid} was handed {w.handed} tasks, maxtasks={config.maxtasks}")
    return found


def _shut_1(state: State, config: Config) -> list[str]:
    sent = state.shutdown_begun or any(w.sentinels for w in state.workers)
    if sent and (state.pool == RUN or state.handed_out < state.submitted):
        return [
            f"SHUT-1: sentinels sent in {state.pool} with {state.handed_out} of "
            f"{state.submitted} tasks handed out"
        ]
    return []


def _shut_2(state: State, config: Config) -> list[str]:
    found = [
        f"SHUT-2: worker {w.wid} was sent {w.sentinels} sentinels" for w in state.workers if w.sentinels > 1
    ]
    if state.shutdown_begun:
        for w in state.workers:
            expected = 0 if retiring(w, config) else 1
            if w.sentinels != expected:
                found.append(
                    f"SHUT-2: after shutdown began worker {w.wid} (handed {w.handed} tasks, "
                    f"maxtasks={config.maxtasks}) has {w.sentinels} sentinels, not {expected}"
                )
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
            f"would wait for workers {[w.wid for w in state.workers]} (alive: {alive})"
        )
    found += [f"SHUT-3: worker {w.wid} never exits" for w in state.workers if w.alive]
    found += [f"JOB-1: task {t} never settles" for t in range(state.submitted) if not state.settled[t]]
    return found
