"""Mutants of what the caller meets: LIFE, API, JOB and ERR clauses."""

from __future__ import annotations

from tests.matrix.mutant import Mutant

FRONT: tuple[Mutant, ...] = (
    Mutant(
        "close-reopens",
        clauses=("LIFE-2",),
        file="refpool/lifecycle.py",
        find="(S.CLOSE, E.CLOSE): S.CLOSE,",
        replace="(S.CLOSE, E.CLOSE): S.RUN,",
        why="a second close() puts a closing pool back in RUN",
        tests=("tests/test_lifecycle.py", "tests/contracts/test_crosshair.py::test_contracts_hold"),
        oracle=("LIFE-2", "LIFE-4"),
    ),
)
