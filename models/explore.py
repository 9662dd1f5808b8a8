"""Breadth-first search over every interleaving of the pool model (models/pool_model.py).

Every reachable state is checked against `invariant_violations`, and every state
at rest against `final_violations`. Breadth-first order means the first
violation found is one at the fewest steps from the initial state, so its path
is a shortest counterexample. States are the model's own hashable tuples;
`parents` maps each state to the state and action it was first reached by.

    python -m models.explore --workers 3 --tasks 4 --crashes 1 [--depth 2] [--maxtasks 2] [--bug NAME]
    python -m models.explore --workers 2 --tasks 4 --jobs 2 --cancels 1 --expiries 1
    python -m models.explore --workers 2 --tasks 4 --buffersize 2

exits 0 after printing "complete: N states, 0 violations", or 1 after printing
the counterexample: the violations (the first line starts with a spec clause
ID), then the actions from the initial state, one per line.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from dataclasses import dataclass

from models.pool_model import (
    BUGS,
    Action,
    Config,
    State,
    at_rest,
    enabled_actions,
    final_violations,
    initial_state,
    invariant_violations,
    successor,
)

__all__ = ["Counterexample", "Report", "explore", "main"]


@dataclass(frozen=True)
class Counterexample:
    violations: tuple[str, ...]  # each starts with its spec clause ID
    path: tuple[Action, ...]  # from `initial_state`; replay it with `step`
    final: bool  # found by `final_violations` (the pool was at rest), not by an invariant

    @property
    def clause(self) -> str:
        return self.violations[0].split(":", 1)[0]

    def format(self) -> str:
        lines = list(self.violations)
        where = "at rest" if self.final else "reached"
        lines.append(f"state {where} after {len(self.path)} actions from the initial state:")
        lines += [f"  {number:3d}. {action}" for number, action in enumerate(self.path, 1)]
        return "\n".join(lines)


@dataclass(frozen=True)
class Report:
    config: Config
    states: int  # distinct states reached (all of them, if the search is complete)
    complete: bool  # every reachable state was checked
    counterexamples: tuple[Counterexample, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.complete and not self.counterexamples


def _violations(state: State, config: Config, actions: list[Action]) -> tuple[list[str], list[str]]:
    """The invariants `state` breaks, and the final properties it breaks if it is at rest."""
    finals = final_violations(state, config) if at_rest(state, config, actions) else []
    return invariant_violations(state, config), finals


def _path(parents: dict[State, tuple[State, Action] | None], state: State) -> tuple[Action, ...]:
    actions = []
    link = parents[state]
    while link is not None:
        state, action = link
        actions.append(action)
        link = parents[state]
    return tuple(reversed(actions))


def explore(config: Config, *, stop_at_first: bool = True) -> Report:
    """Check every reachable state. With stop_at_first=False, go on to the end and keep the first
    (shortest) counterexample of each clause ID."""
    started = time.perf_counter()
    initial = initial_state(config)
    parents: dict[State, tuple[State, Action] | None] = {initial: None}
    frontier = deque([initial])
    found: dict[str, Counterexample] = {}
    while frontier:
        state = frontier.popleft()
        actions = enabled_actions(state, config)
        invariants, finals = _violations(state, config, actions)
        if invariants or finals:
            path = _path(parents, state)
            if stop_at_first:
                found["first"] = Counterexample((*invariants, *finals), path, final=not invariants)
                break
            for message in (*invariants, *finals):
                # The shortest path on which each clause is broken, that clause's message first.
                others = tuple(m for m in (*invariants, *finals) if m != message)
                example = Counterexample((message, *others), path, final=message in finals)
                found.setdefault(example.clause, example)
        for action in actions:
            after = successor(state, action, config)
            if after not in parents:
                parents[after] = (state, action)
                frontier.append(after)
    return Report(
        config=config,
        states=len(parents),
        complete=not frontier,
        counterexamples=tuple(found.values()),
        seconds=time.perf_counter() - started,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.explore", description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--tasks", type=int, default=2, help="tasks the caller submits (default 2)")
    parser.add_argument("--crashes", type=int, default=0, help="worker crashes allowed in a run (default 0)")
    parser.add_argument("--maxtasks", type=int, default=None, help="maxtasksperchild (default None)")
    parser.add_argument(
        "--depth", type=int, default=2, help="the most tasks a worker holds at once (default 2)"
    )
    parser.add_argument("--no-terminate", action="store_true", help="the caller never calls terminate()")
    parser.add_argument(
        "--submit-while-running",
        action="store_true",
        help="the caller submits the tasks one by one while RUN, racing with the pool, instead of up front",
    )
    parser.add_argument("--jobs", type=int, default=1, help="jobs the tasks are split into (default 1)")
    parser.add_argument(
        "--cancels", type=int, default=0, help="jobs the caller may cancel (CANCEL-1; default 0)"
    )
    parser.add_argument(
        "--expiries", type=int, default=0, help="tasks that may run past their timeout (TIME-2; default 0)"
    )
    parser.add_argument(
        "--buffersize", type=int, default=None, help="the tasks are one buffered imap (BUF-1; default: none)"
    )
    parser.add_argument("--bug", action="append", default=[], choices=sorted(BUGS), help="seed a bug")
    parser.add_argument(
        "--all", action="store_true", help="search to the end: the shortest counterexample for each clause"
    )
    args = parser.parse_args(argv)
    config = Config(
        workers=args.workers,
        tasks=args.tasks,
        max_crashes=args.crashes,
        maxtasks=args.maxtasks,
        depth=args.depth,
        allow_terminate=not args.no_terminate,
        submit_upfront=not args.submit_while_running,
        bugs=frozenset(args.bug),
        jobs=args.jobs,
        max_cancels=args.cancels,
        max_expiries=args.expiries,
        buffersize=args.buffersize,
    )
    report = explore(config, stop_at_first=not args.all)
    for number, example in enumerate(report.counterexamples):
        if number:
            print()
        print(example.format())
    if report.counterexamples:
        print(f"\nviolation: {report.states} states reached in {report.seconds:.2f} s")
        return 1
    print(f"complete: {report.states} states, 0 violations ({report.seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
