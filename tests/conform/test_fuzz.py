"""The differential fuzzer: quiet on refpool, loud on pools with a bug, with scripts that reproduce it.

Each broken pool (broken_pools.py) must be caught, named by the clause it
breaks (LIFE-3, API-2, SHUT-4), and the reproducer script must fail against
it and pass against refpool's ThreadPool. The greedy pass after Hypothesis's
shrinking leaves no call the divergence does not need, and never one it needs.
"""

from __future__ import annotations

import multiprocessing.pool
import os
import pathlib
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from refpool.conform.fuzz import Call, FuzzResult, fuzz, fuzz_in_subprocess, minimize
from refpool.conform.shrink import drop_unneeded

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
    assert "pool.close()\npool.close()" not in result.script, result.script

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


# --- the greedy pass ------------------------------------------------------------


def script_calls(script: str) -> list[str]:
    """The lines of a reproducer between making the pool and the divergence."""
    lines = script.splitlines()
    return lines[lines.index("pool = make_pool(2)") + 1 : next(
        n for n, line in enumerate(lines) if line.startswith("# ^ here")
    )]  # fmt: skip


class IgnoresClose(multiprocessing.pool.ThreadPool):
    """broken_pools.IgnoresClose on the stdlib's ThreadPool, so that the greedy pass's tests see
    this bug and no other (each of their many replays makes and ends a pool)."""

    def close(self) -> None:
        pass

    def join(self) -> None:
        pass


IGNORES_CLOSE = "test_fuzz:IgnoresClose"
CLOSE = Call("close", ())


def apply_async(x: int) -> Call:
    return Call("apply_async", (("x", x), ("bad", None)))


@pytest.mark.timeout(60)
def test_the_greedy_pass_leaves_only_the_calls_the_divergence_needs() -> None:
    """Three close() in a row and calls that play no part, as Hypothesis can leave them."""
    calls = [apply_async(3), CLOSE, CLOSE, CLOSE, apply_async(2), Call("get_job", (("index", 0),))]
    result = minimize(IGNORES_CLOSE, calls)
    assert result.status == "FAIL", result.message
    assert script_calls(result.script) == [
        "pool.close()",
        "with refused('Pool not running'):",
        "    pool.apply_async(square_or_fail, (2, None))",
    ]
    # Each call left is needed: without either one, the pool does what the spec says.
    for needed in ([CLOSE], [apply_async(2)]):
        assert minimize(IGNORES_CLOSE, needed).status == "PASS"
    failing = run_script(result.script)
    assert failing.returncode != 0 and "AssertionError" in failing.stderr, failing.stderr


def test_one_deletion_can_make_another_possible() -> None:
    """Repeated to a fixed point: "a" can go only once "c" has gone (one pass would keep it)."""

    def diverges(calls: list[str]) -> bool:
        return "b" in calls and ("a" in calls or "c" not in calls)

    assert drop_unneeded(["a", "b", "c"], diverges, lambda: False) == ["b"]


def test_identical_calls_needed_one_by_one_can_go_together() -> None:
    """Leaving out one of two equal calls loses the divergence; leaving out both keeps it."""

    def diverges(calls: list[str]) -> bool:
        return calls.count("close") % 2 == 0 and "submit" in calls

    assert drop_unneeded(["join", "close", "close", "submit"], diverges, lambda: False) == ["submit"]


def test_out_of_time_the_pass_tries_nothing() -> None:
    def diverges(calls: list[str]) -> bool:
        raise AssertionError("no replay once the budget is spent")

    assert drop_unneeded(["close", "close"], diverges, lambda: True) == ["close", "close"]


@given(
    calls=st.lists(st.sampled_from("abcd"), max_size=8),
    diverges=st.functions(like=lambda calls: True, returns=st.booleans(), pure=True),
)
def test_the_pass_keeps_the_divergence_and_only_needed_calls(calls: list[str], diverges: Any) -> None:
    """Whatever decides whether a script diverges: the result still diverges, is the input with
    calls left out, and leaving out any one call or any run of identical calls loses the divergence."""
    assume(diverges(tuple(calls)))
    kept = drop_unneeded(calls, lambda shorter: bool(diverges(tuple(shorter))), lambda: False)
    assert diverges(tuple(kept))
    remaining = iter(calls)
    assert all(call in remaining for call in kept)  # a subsequence of the input
    for position in range(len(kept)):
        assert not diverges(tuple(kept[:position] + kept[position + 1 :])), (kept, position)
    for start in range(len(kept)):
        end = start
        while end < len(kept) and kept[end] == kept[start]:
            end += 1
        if end - start > 1:
            assert not diverges(tuple(kept[:start] + kept[end:])), (kept, start, end)


@given(
    needed=st.lists(st.sampled_from("abcd"), max_size=4), extra=st.lists(st.sampled_from("abcd"), max_size=6)
)
def test_a_needed_call_is_never_left_out(needed: list[str], extra: list[str]) -> None:
    """When the divergence needs a sequence of calls, exactly those remain, however many others."""
    calls = [*extra[: len(extra) // 2], *needed, *extra[len(extra) // 2 :]]

    def diverges(shorter: list[str]) -> bool:
        remaining = iter(shorter)
        return all(call in remaining for call in needed)

    assert drop_unneeded(calls, diverges, lambda: False) == needed
