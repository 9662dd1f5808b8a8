"""Run each seeded mutant against the checks that should catch it; write the matrix.

    python -m tests.matrix.run [--only NAME,...] [--jobs N]

For each mutant: copy the repository to a temporary folder, write the mutant
into the copy, and run there (so every process a check starts imports the
mutated refpool) each pytest file or node it names, and the oracle's checks
of the clauses it names. A check *catches* the mutant when it fails: pytest
exits 1, or the oracle's verdict is FAIL, HANG or CRASH. The bugs the mutant
names in the models are run unmutated: there the seeded-bug tests pass only if
the explorer or SPIN finds the bug. Results go to spec/mutants.json (merged:
`--only` re-runs some), and spec/mutants.md is rendered from it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fcntl
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from typing import Any

from tests.matrix.catalogue import MUTANTS
from tests.matrix.mutant import ROOT, Mutant, copy_tree
from tests.matrix.render import RESULTS, write_matrix

PYTEST_DEADLINE = 600  # seconds for one pytest run; pytest-timeout ends a hung test well before
ORACLE_DEADLINE = 300
# How each model's seeded-bug test is selected; run in the unmutated repository.
MODEL_TESTS = {
    "explorer": "tests/models/test_python_model.py::test_each_seeded_bug_gives_a_replayable_counterexample",
    "spin": "tests/models/test_spin.py::test_seeded_bug_is_found",
}


def _environment(root: pathlib.Path) -> dict[str, str]:
    environment = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    environment.pop("PYTEST_ADDOPTS", None)
    return environment


def run_pytest(root: pathlib.Path, selection: list[str], keyword: str = "") -> dict[str, Any]:
    """Run pytest in `root`; caught is True when a test failed (exit 1), None when pytest could not run."""
    with tempfile.TemporaryDirectory(prefix="refpool-matrix-junit-") as folder:
        report = pathlib.Path(folder) / "junit.xml"
        command = [sys.executable, "-m", "pytest", *selection, "-x", "-q", "-p", "no:cacheprovider"]
        command += [f"--junit-xml={report}"] + (["-k", keyword] if keyword else [])
        done = subprocess.run(
            command, cwd=root, env=_environment(root), capture_output=True, text=True, timeout=PYTEST_DEADLINE
        )
        failed = _failed_tests(report) if report.exists() else []
    if done.returncode == 0:
        return {"caught": False, "failed": []}
    if done.returncode == 1:
        return {"caught": True, "failed": failed}
    return {"caught": None, "failed": failed, "error": (done.stdout + done.stderr)[-600:]}


def run_model_bug(kind: str, name: str) -> dict[str, Any]:
    """The same bug seeded in a model, on the unmutated repository: caught when the model's
    seeded-bug test passes, since that test passes only if the explorer or SPIN finds it."""
    outcome = run_pytest(ROOT, [MODEL_TESTS[kind]], keyword=name)
    if outcome["caught"] is None and "no tests ran" in outcome.get("error", ""):
        return {"caught": None, "failed": [], "error": f"no seeded-bug test selects {name}"}
    if outcome["caught"] is None:
        return outcome
    return {"caught": not outcome["caught"], "failed": outcome["failed"]}


def junit_outcomes(report: pathlib.Path) -> dict[str, str]:
    """Each test case of a JUnit report, as `module::name`: passed, failed or skipped."""
    outcomes = {}
    for case in ElementTree.parse(report).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        else:
            outcome = "skipped" if case.find("skipped") is not None else "passed"
        outcomes[f"{case.get('classname', '')}::{case.get('name', '')}"] = outcome
    return outcomes


def _failed_tests(report: pathlib.Path) -> list[str]:
    return [name for name, outcome in junit_outcomes(report).items() if outcome == "failed"]


def run_oracle(root: pathlib.Path, target: str, clauses: tuple[str, ...]) -> dict[str, Any]:
    command = [sys.executable, "-m", "refpool", "conform", target, "--clauses", ",".join(clauses)]
    command += ["--fuzz-examples", "0", "--format", "json", "--report-only", "--jobs", "1"]
    done = subprocess.run(
        command, cwd=root, env=_environment(root), capture_output=True, text=True, timeout=ORACLE_DEADLINE
    )
    if done.returncode != 0:
        return {clause: {"status": "ERROR", "reason": done.stderr[-300:]} for clause in clauses}
    verdicts = json.loads(done.stdout)["verdicts"]
    return {v["clause"]: {"status": v["status"], "reason": v["reason"]} for v in verdicts}


def _imports_the_copy(root: pathlib.Path) -> None:
    """Guard against the installed, unmutated refpool shadowing the copy."""
    done = subprocess.run(
        [sys.executable, "-c", "import refpool; print(refpool.__file__)"],
        cwd=root, env=_environment(root), capture_output=True, text=True, check=True,
    )  # fmt: skip
    if not done.stdout.strip().startswith(str(root)):
        raise RuntimeError(f"the checks would import {done.stdout.strip()}, not the mutated copy in {root}")


def run_mutant(mutant: Mutant) -> dict[str, Any]:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"refpool-mutant-{mutant.name}-") as folder:
        root = pathlib.Path(folder)
        copy_tree(root)
        mutant.apply(root)
        _imports_the_copy(root)
        missing = [e for e in mutant.tests if not (root / e.partition("::")[0]).is_file()]
        if missing:
            raise RuntimeError(f"{mutant.name}: {missing} are not in HEAD (mutants run on committed code)")
        tests = {entry: run_pytest(root, [entry]) for entry in mutant.tests}
        oracle = run_oracle(root, mutant.target, mutant.oracle) if mutant.oracle else {}
    models = {}
    for bug in mutant.model_bugs:
        kind, _, name = bug.partition(":")
        models[bug] = run_model_bug(kind, name)
    return {
        "fingerprint": mutant.fingerprint(),
        "seconds": round(time.monotonic() - started, 1),
        "tests": tests,
        "oracle": oracle,
        "models": models,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="", help="comma-separated mutant names (default: every mutant)")
    parser.add_argument("--stale", action="store_true", help="only mutants with no result or a changed one")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once")
    options = parser.parse_args(argv)
    results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    chosen = [m for m in MUTANTS if not options.only or m.name in options.only.split(",")]
    if options.stale:
        chosen = [m for m in chosen if results.get(m.name, {}).get("fingerprint") != m.fingerprint()]
    unknown = set(filter(None, options.only.split(","))) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"no mutant named {', '.join(sorted(unknown))}")
    with concurrent.futures.ThreadPoolExecutor(options.jobs) as runners:
        futures = {runners.submit(run_mutant, m): m for m in chosen}
        for future in concurrent.futures.as_completed(futures):
            mutant = futures[future]
            result = future.result()
            print(f"{mutant.name}: {_summary(result)}", file=sys.stderr, flush=True)
            _record(mutant.name, result)
    return 0


def _record(name: str, result: dict[str, Any]) -> dict[str, Any]:
    """Merge one result into spec/mutants.json, under a lock: several runs may share the file."""
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results[name] = result
        RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        write_matrix(results)
        return results


def _summary(result: dict[str, Any]) -> str:
    caught = [k for k, v in {**result["tests"], **result["models"]}.items() if v["caught"]]
    caught += [f"oracle {c}" for c, v in result["oracle"].items() if v["status"] in ("FAIL", "HANG", "CRASH")]
    return f"caught by {', '.join(caught)}" if caught else "NOT CAUGHT"


if __name__ == "__main__":
    sys.exit(main())
