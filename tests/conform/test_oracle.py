"""The oracle itself: it passes refpool, and catches pools broken on purpose.

Each broken pool (broken_pools.py) must be reported with the clause it
breaks, and the oracle must neither hang nor crash on a target that does.
"""

from __future__ import annotations

import inspect
import json
import multiprocessing.pool
import os
import pathlib
import subprocess
import sys

import pytest

from refpool.conform.registry import CHECKS
from refpool.conform.runner import run_all, run_check, select

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def broken_pools_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))


def test_every_check_names_a_clause_of_the_spec() -> None:
    spec = (HERE.parent.parent / "spec" / "pool.md").read_text()
    assert len(CHECKS) >= 25
    assert [c for c in CHECKS if f"**{c}**" not in spec] == []
    extensions = {c for c in CHECKS if f"**{c}** **(refpool)**" in spec}
    assert {c for c, check in CHECKS.items() if check.extension} == extensions


@pytest.mark.timeout(600)
@pytest.mark.parametrize("target", ["refpool", "refpool-threads"])
def test_refpool_passes_every_clause(target: str) -> None:
    verdicts = run_all(target, select(None), timeout=60, jobs=2)
    assert [(v.clause, v.status, v.reason) for v in verdicts if v.status not in ("PASS", "SKIP")] == []
    assert sum(v.status == "PASS" for v in verdicts) >= 20


# The lifecycle is seen through behaviour (refpool/conform/clauses/states.py), not through repr():
# three pools whose repr is right and whose behaviour is not, with the words the oracle must say.
WRONG_LIFECYCLE = [
    ("ClosesOnlyAtJoin", "after close(), the pool should be in CLOSE, but apply_async was accepted"),
    ("TerminateOnlyCloses", "should be in TERMINATE, but every submit was refused"),
    ("TerminateOnlyCloses", "and the job held since RUN completed"),
    ("CloseTerminates", "should be in CLOSE, but every submit was refused"),
    ("CloseTerminates", "the job held since RUN failed"),
]


@pytest.mark.parametrize(("pool", "reason"), WRONG_LIFECYCLE)
def test_a_pool_whose_lifecycle_misbehaves_fails_life_1(pool: str, reason: str) -> None:
    verdict = run_check(f"broken_pools:{pool}", "LIFE-1", timeout=60)
    assert verdict.status == "FAIL" and reason in verdict.reason, verdict


def test_a_repr_without_state_fails_api_9_alone() -> None:
    """The lifecycle checks do not read repr(): a pool whose repr shows no state passes them."""
    verdicts = run_all("broken_pools:ReprWithoutState", select("LIFE-1,LIFE-2,LIFE-4,LIFE-5,API-9"), 60)
    assert {v.clause: v.status for v in verdicts} == {
        "LIFE-1": "PASS",
        "LIFE-2": "PASS",
        "LIFE-4": "PASS",
        "LIFE-5": "PASS",
        "API-9": "FAIL",
    }, verdicts


def test_checks_make_no_probe_pool_before_their_own() -> None:
    """A target that refuses a pool larger than the first one its process made (Ray's Pool(n)
    does) gets the same verdicts as refpool from the checks that need worker processes: they
    learn the workers' kind from their own pool. The seeded bug is the oracle's old probe pool
    of one worker, which made each of these checks fail before it reached its clause."""
    modules = ("refpool.conform.clauses.errors", "refpool.conform.clauses.workers")
    clauses = [c for c, check in CHECKS.items() if check.run.__module__ in modules]
    assert len(clauses) >= 5
    verdicts = run_all("broken_pools:RefusesALargerPool", clauses, timeout=60, jobs=2)
    assert [(v.clause, v.status, v.reason) for v in verdicts if v.status != "PASS"] == []


def test_a_pool_that_drops_a_result_fails_api_2() -> None:
    """API-2 is caught when map loses its last result."""
    assert run_check("broken_pools:DropsAResult", "API-2", timeout=60).status == "FAIL"
    assert run_check("refpool-threads", "API-2", timeout=60).status == "PASS"


def test_one_sentinel_too_few_fails_shut_4() -> None:
    """SHUT-4: join() after close() must return; with a sentinel missing it does not."""
    verdict = run_check("broken_pools:OneSentinelTooFew", "SHUT-4", timeout=60)
    assert verdict.status in ("FAIL", "HANG") and "join" in verdict.reason


def test_a_pool_that_hangs_is_reported_as_hang_not_waited_for() -> None:
    """The check bounds join() itself; the runner's deadline, shorter still, says HANG and names the step."""
    verdict = run_check("broken_pools:JoinHangs", "SHUT-4", timeout=3)
    assert verdict.status == "HANG"
    assert "join" in verdict.reason and verdict.seconds < 20


def test_a_pool_that_kills_its_process_is_reported_as_crash() -> None:
    verdict = run_check("broken_pools:CrashesOnClose", "SHUT-4", timeout=60)
    assert verdict.status == "CRASH" and "exit code 7" in verdict.reason


def test_the_command_line_reports_and_exits_by_the_verdicts() -> None:
    """`refpool conform` prints JSON for machines, and its exit code says whether every clause passed."""

    def conform(target: str) -> tuple[int, dict[str, object]]:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "refpool",
                "conform",
                target,
                "--clauses",
                "API-1,API-2",
                "--fuzz-examples",
                "0",
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return done.returncode, json.loads(done.stdout)

    code, report = conform("refpool-threads")
    assert code == 0 and report["passed"] is True
    code, report = conform("broken_pools:DropsAResult")
    assert code == 1 and report["passed"] is False
    statuses = {v["clause"]: v["status"] for v in report["verdicts"]}  # type: ignore[attr-defined]
    assert statuses == {"API-1": "PASS", "API-2": "FAIL"}


def test_a_missing_target_is_a_message_not_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "refpool", "conform", "no_such_pool_module:Pool"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "cannot import no_such_pool_module" in done.stderr and "Traceback" not in done.stderr


def test_the_pytest_plugin_runs_the_checks_in_another_suite(tmp_path: pathlib.Path) -> None:
    """`pytest --pool-target=...` turns clauses into test items, failing the ones the pool breaks (API-2)."""

    def plugin_run(target: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                f"--pool-target={target}",
                "--pool-clauses=API-1,API-2",
                "-q",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )

    broken = plugin_run("broken_pools:DropsAResult")
    assert broken.returncode == 1, broken.stdout
    assert "1 failed, 1 passed" in broken.stdout and "conform[API-2]" in broken.stdout
    assert plugin_run("refpool-threads").returncode == 0


def test_a_pool_that_leaves_its_pipes_to_the_collector_fails_shut_6_and_shut_7() -> None:
    """SHUT-6 counts descriptors with the collector off; SHUT-7 while the pool is still held."""
    for clause in ("SHUT-6", "SHUT-7"):
        verdict = run_check("broken_pools:LeavesPipesToTheCollector", clause, timeout=90)
        assert verdict.status == "FAIL" and "fds" in verdict.reason, (clause, verdict)


def test_a_pool_that_keeps_the_last_input_fails_shut_8() -> None:
    verdict = run_check("broken_pools:KeepsTheLastInput", "SHUT-8", timeout=60)
    assert verdict.status == "FAIL" and "map" in verdict.reason, verdict


def test_a_pool_that_never_gives_up_on_its_initializer_fails_lost_4() -> None:
    verdict = run_check("broken_pools:NeverGivesUpOnItsInitializer", "LOST-4", timeout=60)
    assert verdict.status == "FAIL" and "initializer always raises" in verdict.reason, verdict


# Bounded imap, task timeouts and cancelling: one pool broken on purpose per clause, the words
# the oracle must say about it, and refpool passing the same clause.
BROKEN_CONTROL = [
    ("BufferedImapReadsItAll", "BUF-1", "had drawn 200 items when it returned: at most 32 expected"),
    ("BufferedImapBlocksTheTaskHandler", "BUF-3", "held the pool back"),
    ("BufferedImapEndsQuietlyOnClose", "BUF-4", "though its input had more"),
    ("CancelLetsQueuedTasksRun", "CANCEL-1", "tasks of cancelled jobs ran"),
    ("TimeoutDoesNotStopTheTask", "TIME-2", "did not settle within 5 s"),
    ("TaskTimeoutLooksLikeAWait", "TIME-3", "failed with multiprocessing.TimeoutError"),
]


@pytest.mark.parametrize(("pool", "clause", "reason"), BROKEN_CONTROL, ids=[c for _, c, _ in BROKEN_CONTROL])
def test_a_pool_broken_on_purpose_fails_its_buf_time_or_cancel_clause(
    pool: str, clause: str, reason: str
) -> None:
    verdict = run_check(f"broken_pools:{pool}", clause, timeout=60)
    assert verdict.status == "FAIL" and reason in verdict.reason, verdict
    target = "refpool" if clause.startswith("TIME") else "refpool-threads"
    assert run_check(target, clause, timeout=60).status == "PASS"


def test_a_buffered_imap_built_as_cpython_builds_it_keeps_buf_1() -> None:
    """BUF-1 is CPython 3.16's meaning: its design (the task handler draws, a slot per result taken)
    keeps the bound, and breaks only BUF-3 (the pool waits with it)."""
    verdict = run_check("broken_pools:BufferedImapBlocksTheTaskHandler", "BUF-1", timeout=60)
    assert verdict.status == "PASS", verdict


STDLIB_HAS_BUFFERSIZE = "buffersize" in inspect.signature(multiprocessing.pool.Pool.imap).parameters


@pytest.mark.parametrize(
    ("target", "clause", "reason"),
    [
        pytest.param(
            "stdlib",
            "BUF-1",
            "imap() does not accept buffersize=",
            marks=pytest.mark.skipif(STDLIB_HAS_BUFFERSIZE, reason="this Python's pool has buffersize"),
        ),
        ("stdlib", "TIME-2", "apply_async() does not accept timeout="),
        ("stdlib", "CANCEL-1", "has no cancel()"),
        ("stdlib-threads", "TIME-4", "apply_async() does not accept timeout="),
    ],
)
def test_a_pool_without_the_keyword_or_method_fails_with_a_reason(
    target: str, clause: str, reason: str
) -> None:
    """The stdlib's pools (3.11 to 3.13) have no buffersize, no task timeout and no cancel(): the
    oracle says so, as a FAIL with a reason, and does not crash."""
    verdict = run_check(target, clause, timeout=60)
    assert verdict.status == "FAIL" and reason in verdict.reason, verdict


def test_task_timeouts_are_skipped_for_threads_and_thread_pools_checked_for_refusal() -> None:
    """TIME-2 needs worker processes; TIME-4 is about thread pools: each SKIPs the other kind."""
    assert run_check("refpool-threads", "TIME-2", timeout=60).status == "SKIP"
    assert run_check("refpool", "TIME-4", timeout=60).status == "SKIP"
