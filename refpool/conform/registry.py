"""What a clause check is, and the registry that the checks fill (the clauses package, control_clauses.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PoolFactory = Callable[..., Any]  # make_pool(processes, **options) -> a pool


class Broken(Exception):
    """The target breaks the clause; the message is the one-line reason."""


class Skip(Exception):
    """The check does not apply to this target (e.g. it needs worker processes)."""


@dataclass(frozen=True)
class Check:
    clause: str  # the spec clause ID, e.g. "LIFE-3"
    title: str
    run: Callable[[PoolFactory], None]  # raises Broken or Skip; returns when the clause holds
    extension: bool  # refpool chose behaviour on purpose different from CPython's (spec "(refpool)")


CHECKS: dict[str, Check] = {}


def check(
    clause: str, title: str, *, extension: bool = False
) -> Callable[[Callable[[PoolFactory], None]], Callable[[PoolFactory], None]]:
    """Register the decorated function as the check of `clause`."""

    def register(run: Callable[[PoolFactory], None]) -> Callable[[PoolFactory], None]:
        if clause in CHECKS:
            raise ValueError(f"clause {clause} already has a check: {CHECKS[clause].run.__name__}")
        CHECKS[clause] = Check(clause, title, run, extension)
        return run

    return register


def step(what: str) -> None:
    """Say what the check is doing now: if the target hangs, the report names this step."""
    print(f"step: {what}", file=sys.stderr, flush=True)


def require(condition: bool, reason: str) -> None:
    if not condition:
        raise Broken(reason)
