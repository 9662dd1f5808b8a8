"""The functions the trace scenarios run in worker processes; importable, so spawned workers find them."""

from __future__ import annotations

import os
from multiprocessing.connection import Connection

# Long enough for any scenario; a gate never opened fails the task instead of hanging it.
GATE_LIMIT = 60.0

# The scenario's gates, handed to each worker through the pool's initializer:
# a task that waits on one runs until the scenario opens it. A gate is the
# read end of a pipe, open once the scenario has written to it (nobody reads
# it, so it stays readable). Not a multiprocessing.Event: a worker killed while
# it waits on one (terminate, a timeout) leaves its condition counting a
# sleeper that never wakes, and set() then waits for it for ever.
_gates: tuple[Connection, ...] = ()


def keep_gates(*gates: Connection) -> None:
    """The pool's initializer: every worker, replacements too, holds the same gates."""
    global _gates
    _gates = gates


def _wait(gate: int) -> None:
    if not _gates[gate].poll(GATE_LIMIT):
        raise RuntimeError(f"gate {gate} was not opened within {GATE_LIMIT:g} s")


def square(x: int) -> int:
    return x * x


def held_square(x: int, gate: int = 0) -> int:
    """x * x, once the scenario opens the gate: work in flight that the scenario controls."""
    _wait(gate)
    return x * x


def die_when_released(gate: int = 0, exitcode: int = 7) -> None:
    """Kill this worker, once the scenario opens the gate: the tasks behind it are still unstarted."""
    _wait(gate)
    os._exit(exitcode)
