"""Every seeded mutant of the matrix, at least one for each spec clause."""

from __future__ import annotations

from tests.matrix.mutant import Mutant
from tests.matrix.mutants_front import FRONT
from tests.matrix.mutants_workers import WORKERS

MUTANTS: tuple[Mutant, ...] = (*FRONT, *WORKERS)
