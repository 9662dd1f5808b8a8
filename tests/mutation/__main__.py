"""Mutation testing of refpool's core with cosmic-ray, in a copy of the repository (opt-in).

    pip install -e '.[test,mutation]'
    nice -n 10 python -m tests.mutation [--modules lifecycle,chunking] [--all] [--seed N] [--keep DIR]
    nice -n 10 python -m tests.mutation --retry DIR --keep DIR2  # only what survived in DIR

cosmic-ray rewrites the module it mutates in place, so this never runs in the
repository: it copies the committed tree (HEAD) to a temporary folder, and
there, for each module of tests/mutation/modules.toml in turn, runs
`cosmic-ray init` (every mutant of the module), marks skipped the mutants inside
annotations (never evaluated, so equivalent), keeps a seeded sample of the rest
if the module has one (the others are marked skipped too), checks that its tests
pass unmutated (`cosmic-ray baseline`) and runs `cosmic-ray exec` with one
local worker. It prints each module's score and every surviving mutant as a
diff; the sessions stay in --keep DIR (default: a new temporary folder), where
`cr-report DIR/MODULE.sqlite` shows them again. With --retry DIR, each module
tries only the mutants that survived in DIR's session of it: after tests were
added to kill them, this shows which still survive.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import pathlib
import random
import shlex
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkItem, WorkResult

from tests.matrix.mutant import copy_tree

CONFIG = pathlib.Path(__file__).with_name("modules.toml")


@dataclass(frozen=True)
class Score:
    module: str
    mutants: int  # all that cosmic-ray made of the module
    in_annotations: int  # never evaluated, so equivalent: not run
    tried: int
    killed: int
    survivors: list[str]  # each as "operator occurrence, line N" and its diff

    def line(self) -> str:
        share = f"{100 * self.killed / self.tried:.0f}%" if self.tried else "-"
        rest = self.mutants - self.in_annotations
        sampled = "" if self.tried == rest else f", of {rest}"
        return (
            f"{self.module}: {self.killed}/{self.tried} killed, {share} ({self.mutants} mutants, "
            f"{self.in_annotations} in annotations and not run{sampled})"
        )


def cosmic_ray_config(module: str, spec: dict[str, Any], settings: dict[str, Any]) -> str:
    """The session's configuration: the module, the command that tests it, one local worker."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *spec["tests"]]
    command += ["-k", settings["keyword"]]
    return "\n".join(
        [
            "[cosmic-ray]",
            f'module-path = "refpool/{module}.py"',
            f"timeout = {float(settings['timeout'])}",
            "excluded-modules = []",
            f"test-command = {json.dumps(shlex.join(command))}",  # a JSON string is a TOML one
            "",
            "[cosmic-ray.distributor]",
            'name = "local"',
            "",
        ]
    )


def skip_annotations(session: pathlib.Path, source: pathlib.Path) -> int:
    """Mark skipped the mutants inside annotations; returns how many.

    Every core module has `from __future__ import annotations`, so an annotation
    is never evaluated: `float | None` -> `float - None` changes nothing that
    runs (a quarter of jobs.py's survivors, when they were run)."""
    text = source.read_text()
    assert "from __future__ import annotations" in text, f"{source}: annotations are evaluated here"
    spans = [
        ((node.lineno, node.col_offset), (node.end_lineno or node.lineno, node.end_col_offset or 0))
        for node in _annotations(ast.parse(text))
    ]
    with use_db(str(session), WorkDB.Mode.open) as db:
        inside = [
            item.job_id
            for item in db.pending_work_items
            if any(start <= tuple(item.mutations[0].start_pos) < end for start, end in spans)
        ]
        not_run = WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=IN_ANNOTATION)
        db.set_multiple_results(inside, not_run)
    return len(inside)


IN_ANNOTATION = "in an annotation: never evaluated"


def _annotations(module: ast.Module) -> Iterator[ast.expr]:
    for node in ast.walk(module):
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            yield node.annotation
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            yield node.returns


def keep_sample(session: pathlib.Path, size: int | None, seed: str) -> None:
    """Mark skipped all but `size` of the mutants still to run, drawn at random from `seed`."""
    with use_db(str(session), WorkDB.Mode.open) as db:
        job_ids = sorted(item.job_id for item in db.pending_work_items)
        if size is not None and size < len(job_ids):
            kept = set(random.Random(seed).sample(job_ids, size))
            skipped = [job_id for job_id in job_ids if job_id not in kept]
            db.set_multiple_results(skipped, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))


def keep_survivors(session: pathlib.Path, earlier: pathlib.Path) -> None:
    """Mark skipped every mutant still to run that did not survive in the earlier session."""
    with use_db(str(earlier), WorkDB.Mode.open) as db:
        survived = {
            _identity(item)
            for item, result in db.completed_work_items
            if result.test_outcome is TestOutcome.SURVIVED
        }
    with use_db(str(session), WorkDB.Mode.open) as db:
        skipped = [item.job_id for item in db.pending_work_items if _identity(item) not in survived]
        db.set_multiple_results(skipped, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))


def _identity(item: WorkItem) -> tuple[str, str, int]:
    """What names a mutant from one session to the next (job ids are random)."""
    mutation = item.mutations[0]
    return str(mutation.module_path), mutation.operator_name, mutation.occurrence


def score(module: str, session: pathlib.Path) -> Score:
    in_annotations, killed, tried, survivors = 0, 0, 0, []
    with use_db(str(session), WorkDB.Mode.open) as db:
        mutants = db.num_work_items
        for item, result in db.completed_work_items:
            if result.worker_outcome is WorkerOutcome.SKIPPED:
                in_annotations += result.output == IN_ANNOTATION
                continue
            tried += 1
            if result.test_outcome is TestOutcome.SURVIVED:
                mutation = item.mutations[0]
                where = f"{mutation.operator_name} {mutation.occurrence}, line {mutation.start_pos[0]}"
                survivors.append(f"{where}\n{result.diff}")
            else:
                killed += 1  # a failed test, a timeout, or a mutant that cannot even be imported
    return Score(module, mutants, in_annotations, tried, killed, survivors)


def run_module(
    tree: pathlib.Path,
    sessions: pathlib.Path,
    module: str,
    spec: dict[str, Any],
    settings: dict[str, Any],
    earlier: pathlib.Path | None,
) -> Score:
    config_file = sessions / f"{module}.toml"
    session = sessions / f"{module}.sqlite"
    config_file.write_text(cosmic_ray_config(module, spec, settings))
    environment = dict(os.environ, PYTHONPATH=str(tree))  # every process imports the copy

    def cosmic_ray(*arguments: str) -> None:
        command = [sys.executable, "-m", "cosmic_ray.cli", *arguments]
        subprocess.run(command, cwd=tree, env=environment, check=True)

    cosmic_ray("init", str(config_file), str(session), "--force")
    skip_annotations(session, tree / "refpool" / f"{module}.py")
    if earlier is None:
        keep_sample(session, spec.get("sample"), f"{settings['seed']}:{module}")
    else:
        keep_survivors(session, earlier / f"{module}.sqlite")
    cosmic_ray("baseline", str(config_file))  # fails if the tests fail unmutated
    cosmic_ray("exec", str(config_file), str(session))
    return score(module, session)


def load_config() -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    config = tomllib.loads(CONFIG.read_text())
    return config["modules"], config["settings"]


def main() -> int:
    modules, settings = load_config()
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.split("\n")[0])
    parser.add_argument("--modules", default=",".join(modules), help="comma-separated, from modules.toml")
    parser.add_argument("--all", action="store_true", help="every mutant, not the modules' samples")
    parser.add_argument("--seed", type=int, default=20261201, help="for the samples")
    parser.add_argument("--keep", type=pathlib.Path, help="folder for the sessions (default: a new one)")
    parser.add_argument("--retry", type=pathlib.Path, help="a --keep folder: try only what survived there")
    arguments = parser.parse_args()
    chosen = arguments.modules.split(",")
    unknown = [module for module in chosen if module not in modules]
    if unknown:
        parser.error(f"not in {CONFIG.name}: {', '.join(unknown)}")
    sessions = arguments.keep or pathlib.Path(tempfile.mkdtemp(prefix="refpool-mutation-"))
    sessions.mkdir(parents=True, exist_ok=True)
    scores = []
    with tempfile.TemporaryDirectory(prefix="refpool-mutation-tree-") as folder:
        tree = pathlib.Path(folder)
        copy_tree(tree)
        settings["seed"] = arguments.seed
        for module in chosen:
            spec = {"tests": modules[module]["tests"]} if arguments.all else modules[module]
            scores.append(run_module(tree, sessions, module, spec, settings, arguments.retry))
            print(scores[-1].line(), flush=True)
    for result in scores:
        for survivor in result.survivors:
            print(f"\nSURVIVED in {result.module}: {survivor}")
    print(f"\nSessions in {sessions}")
    for result in scores:
        print(result.line())
    killed, tried = sum(s.killed for s in scores), sum(s.tried for s in scores)
    print(f"core: {killed}/{tried} killed, {100 * killed / max(tried, 1):.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
