"""The differential fuzzer: quiet on refpool, loud on pools with a bug, with scripts that reproduce it.

Each broken pool (broken_pools.py) must be caught, named by the clause it
breaks (LIFE-3, API-2, SHUT-4), and the reproducer script must fail against
it and pass against refpool's ThreadPool.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from refpool.conform.fuzz import FuzzResult, fuzz, fuzz_in_subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
HERE = pathlib.Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE), os.environ.get("PYTHONPATH", "")])}


def run_script(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script], timeout=60, env=ENV, capture_output=True, text=True, cwd=ROOT
    )


def against_refpool(script: str, reference: str) -> str:
    """The same script, with refpool's ThreadPool as the target."""
    module, _, attribute = reference.partition(":")
    line = f"from {module} import {attribute} as make_pool"
    assert line in script
    return script.replace(line, "from refpool import ThreadPool as make_pool")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("target", ["refpool-threads", "refpool"])
def test_refpool_does_not_diverge(target: str) -> None:
    result = fuzz(target, 30)
    assert result.status == "PASS", result.message
    assert not result.divergence
    assert result.examples >= 30


BROKEN = [
    # target, the clause it breaks, the call timeout
    ("broken_pools:IgnoresClose", "LIFE-3", 10),
    ("broken_pools:MapDropsLastResult", "API-2", 10),
    ("broken_pools:JoinHangs", "SHUT-4", 1),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("target", "clause", "call_timeout"), BROKEN)
def test_a_broken_pool_is_caught_and_reproduced(target: str, clause: str, call_timeout: float) -> None:
    result = fuzz(target, 50, call_timeout, shrink_seconds=15)
    assert result.status == "FAIL"
    assert result.divergence
    assert result.clause == clause, result.message
    assert result.message.startswith(f"{clause}: ")
    assert not result.extension
    assert result.script.count("\n") < 40, result.script  # shrunk to a short script

    failing = run_script(result.script)
    assert failing.returncode != 0, failing.stdout + failing.stderr
    assert "AssertionError" in failing.stderr, failing.stderr

    passing = run_script(against_refpool(result.script, target))
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "no divergence" in passing.stdout


def test_an_unknown_target_is_skipped() -> None:
    result = fuzz("no_such_module_anywhere:Pool", 5)
    assert result.status == "SKIP"
    assert "cannot import" in result.message


@pytest.mark.timeout(120)
def test_in_a_subprocess_a_divergence_comes_back_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", ENV["PYTHONPATH"])
    result = fuzz_in_subprocess("broken_pools:IgnoresClose", 50, deadline=60)
    assert result.status == "FAIL", result.message
    assert result.clause == "LIFE-3"
    assert "make_pool(2)" in result.script
    assert FuzzResult.from_json(result.to_json()) == result


def test_in_a_subprocess_a_hung_fuzzer_is_ended_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", ENV["PYTHONPATH"])
    # A call timeout far beyond the deadline: the fuzzer waits on join() when the deadline comes.
    result = fuzz_in_subprocess("broken_pools:JoinHangs", 50, deadline=8, call_timeout=600)
    assert result.status == "HANG"
    assert result.divergence
    assert "the fuzzer itself hung" in result.message
    assert "while: " in result.message and "starting" not in result.message


def test_the_fuzzer_labels_extensions_as_the_spec_marks_them() -> None:
    """One list of extensions, the checks' registry: every clause the spec marks "(refpool)" is
    labelled an extension, and no other (a hand-kept list had drifted both ways). The IDs are
    read from the spec, not written here, so this test cites no clause of its own."""
    import re

    from refpool.conform.fuzz import is_extension
    from refpool.conform.registry import CHECKS

    spec = (pathlib.Path(__file__).resolve().parents[2] / "spec" / "pool.md").read_text()
    marked = set(re.findall(r"^- \*\*([A-Z]+-\d+)\*\* \*\*\(refpool\)\*\*", spec, re.MULTILINE))
    assert len(marked) > 20
    assert {clause for clause in CHECKS if is_extension(clause)} == marked & set(CHECKS)
    assert not is_extension("NOT-A-CLAUSE")
