"""The clause-by-mutant matrix (tests/matrix/) stays true: every clause has a mutant that a
check catches, every mutant still applies to the code, and spec/mutants.md is its results."""

from __future__ import annotations

import pathlib
import re

import pytest
from test_spec import defined_clauses

from tests.matrix import render, run
from tests.matrix.catalogue import MUTANTS
from tests.matrix.mutant import ROOT, Mutant


def test_mutant_names_are_unique_and_name_real_clauses() -> None:
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names))
    clauses = set(defined_clauses())
    assert {c for m in MUTANTS for c in (*m.clauses, *m.oracle)} <= clauses


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_mutant_still_applies_to_the_code(mutant: Mutant) -> None:
    """A mutant whose text the code no longer holds would test nothing: rewrite it, then
    re-run it (python -m tests.matrix.run --only NAME)."""
    assert mutant.occurrences() == 1, f"{mutant.name}: {mutant.find!r} is not in {mutant.file} exactly once"


def test_a_mutant_whose_text_is_gone_is_refused(tmp_path: pathlib.Path) -> None:
    (tmp_path / "refpool").mkdir()
    (tmp_path / "refpool" / "core.py").write_text("x = 1\n")
    stale = Mutant("stale", ("LIFE-1",), "refpool/core.py", "x = 2", "x = 3", "nothing")
    with pytest.raises(ValueError, match=re.escape("stale: 'x = 2' occurs 0 times in refpool/core.py")):
        stale.apply(tmp_path)


def test_each_named_check_exists() -> None:
    for mutant in MUTANTS:
        for entry in mutant.tests:
            path, _, test = entry.partition("::")
            assert (ROOT / path).is_file(), f"{mutant.name}: no file {path}"
            if test:
                assert re.search(rf"^def {test}\(", (ROOT / path).read_text(), re.M), (
                    f"{mutant.name}: {entry}"
                )


def test_every_mutant_has_a_result_for_what_it_is_now() -> None:
    results = render.load_results()
    stale = [m.name for m in MUTANTS if render.current(m, results) is None]
    assert stale == [], "run: python -m tests.matrix.run --stale"


def test_every_clause_is_broken_by_a_mutant_that_a_check_catches() -> None:
    assert render.uncaught(defined_clauses(), render.load_results()) == []


def test_a_clause_whose_mutants_nothing_catches_is_a_hole() -> None:
    """The check above fails when no check catches a clause's mutants (seeded: every
    recorded result turned into one that nothing caught)."""
    results = render.load_results()
    missed = {
        m.name: {
            "fingerprint": m.fingerprint(),
            "tests": {e: {"caught": False, "failed": []} for e in m.tests},
            "oracle": {c: {"status": "PASS", "reason": ""} for c in m.oracle},
            "models": {b: {"caught": False, "failed": []} for b in m.model_bugs},
        }
        for m in MUTANTS
        if "LIFE-3" in m.clauses
    }
    assert render.uncaught(["LIFE-3", "LIFE-4"], {**results, **missed}) == ["LIFE-3"]


def test_the_matrix_in_the_spec_is_rendered_from_the_results() -> None:
    assert render.MATRIX.read_text() == render.render(render.load_results()), (
        "run: python -m tests.matrix.run --stale"
    )


def test_one_mutant_is_caught_again_as_recorded() -> None:
    """The recorded results are not taken on trust: the quickest mutant that a unit test
    catches is run again, in a copy of the repository, and caught by the same checks."""
    results = render.load_results()
    candidates = [m for m in MUTANTS if (r := render.current(m, results)) and render.catchers(m, r)["unit"]]
    quickest = min(candidates, key=lambda m: results[m.name]["seconds"])
    again = run.run_mutant(quickest)
    assert render.catchers(quickest, again) == render.catchers(quickest, results[quickest.name])
