"""Mutants of the back of the pool: WORK, LOST, SHUT, BUF, TIME and CANCEL clauses."""

from __future__ import annotations

from tests.matrix.mutant import Mutant

WORKERS: tuple[Mutant, ...] = ()
