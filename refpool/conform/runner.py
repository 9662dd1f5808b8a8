"""Runs every selected clause check, each in a fresh subprocess with a deadline."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO

from . import clauses, control_clauses  # noqa: F401  (register the checks, in spec order)
from .child import RESULT_MARK
from .registry import CHECKS


@dataclass(frozen=True)
class Verdict:
    clause: str
    title: str
    status: str  # PASS, FAIL, HANG, CRASH or SKIP
    reason: str
    seconds: float
    extension: bool


def select(patterns: str | None) -> list[str]:
    """Clause IDs matching comma-separated globs (e.g. "LIFE-*,LOST-1"), in spec order."""
    chosen = list(CHECKS)
    if patterns:
        globs = [p.strip() for p in patterns.split(",") if p.strip()]
        chosen = [c for c in chosen if any(fnmatch.fnmatchcase(c, g) for g in globs)]
    return chosen


def run_check(target: str, clause: str, timeout: float) -> Verdict:
    check = CHECKS[clause]
    started = time.monotonic()
    # Output goes to files, not pipes: workers a broken pool leaves behind keep
    # a pipe open, and reading it to its end would wait for them. The child's
    # own exit says it is done; a session of its own lets us end its leftovers.
    # Each check also gets a temporary folder and a mark in its environment:
    # daemons a pool starts outside the session (Ray's cluster) are found by
    # the mark and ended, and cannot be found again by the next check.
    mark = f"{MARK_VARIABLE}={uuid.uuid4().hex}"
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.TemporaryDirectory(prefix="refpool-conform-") as scratch,
    ):
        environment = {**os.environ, MARK_VARIABLE: mark.partition("=")[2], "TMPDIR": scratch}
        process = subprocess.Popen(
            [sys.executable, "-m", "refpool.conform.child", target, clause],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=True,
            env=environment,
        )
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_session(process.pid)
            process.wait()
            status, reason = "HANG", f"no answer in {timeout:g} s while: {_last_step(_read(err))}"
        else:
            _kill_session(process.pid)
            status, reason = _result(_read(out), _read(err), process.returncode)
        _kill_marked(mark)
    return Verdict(clause, check.title, status, reason, time.monotonic() - started, check.extension)


def _read(file: IO[str]) -> str:
    file.seek(0)
    return file.read()


def _result(out: str, err: str, returncode: int) -> tuple[str, str]:
    for line in out.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK) :])
            return str(result["status"]), str(result["reason"])
    how = f"exit code {returncode}" if returncode >= 0 else signal.Signals(-returncode).name
    return "CRASH", f"the check's process died ({how}) while: {_last_step(err)}"


def _last_step(stderr: str) -> str:
    steps = [line[len("step: ") :] for line in stderr.splitlines() if line.startswith("step: ")]
    return steps[-1] if steps else "starting"


MARK_VARIABLE = "REFPOOL_CONFORM_CHECK"


def _kill_marked(mark: str) -> None:
    """End every process whose environment carries `mark`, wherever it went (Linux's /proc)."""
    needle = mark.encode() + b"\0"
    for entry in pathlib.Path("/proc").glob("[0-9]*"):
        try:
            if needle in (entry / "environ").read_bytes() + b"\0":
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue  # gone, or not ours to read


def _kill_session(session: int) -> None:
    """End whatever the check left running in its session (workers of a pool that leaked)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing was left
        os.killpg(session, signal.SIGKILL)


def run_all(
    target: str,
    clause_ids: Iterable[str],
    timeout: float,
    jobs: int = 2,
    progress: Callable[[int, int, Verdict], None] | None = None,
) -> list[Verdict]:
    """Run the checks, `jobs` at a time; `progress(done, total, verdict)` after each, in the
    order they finish. The verdicts come back in the order of `clause_ids`."""
    ids = list(clause_ids)
    done = 0
    finished = threading.Lock()  # one progress line at a time, numbered in order

    def one(clause: str) -> Verdict:
        nonlocal done
        verdict = run_check(target, clause, timeout)
        with finished:
            done += 1
            if progress is not None:
                progress(done, len(ids), verdict)
        return verdict

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as executor:
        return list(executor.map(one, ids))
