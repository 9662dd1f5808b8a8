"""The oracle itself: it passes refpool, and catches pools broken on purpose.

Each broken pool (broken_pools.py) must be reported with the clause it
breaks, and the oracle must neither hang nor crash on a target that does.
"""

from __future__ import annotations

import json
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
