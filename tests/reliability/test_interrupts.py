"""Interrupts and concurrency: Ctrl-C, a parent that dies, callers in many threads.

Ctrl-C and the parent's death are tried on a pool in a child Python process
(pool_child.py), started in its own session so that neither SIGINT nor the
cleanup can reach pytest. Every process of that session (workers, the
forkserver, the resource tracker, replacements started late) must be gone
within a few seconds of the child's end (SHUT-9, SHUT-10): we poll /proc with
a deadline, since there is nothing to wait on for a grandchild. Each run prints
one line of figures (pytest -s shows them).
"""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import refpool

from conftest import PROCESS_KINDS
from pool_helpers import MakePool, square
from reliability.campaign_helpers import (
    SIZES,
    WAIT,
    kill_all,
    running,
    session_members,
    size_of,
    tagged,
    wait_until_gone,
    what_process,
)

CHILD = Path(__file__).with_name("pool_child.py")
TESTS = Path(__file__).parent.parent
GRACE = 5.0  # seconds a worker may take to notice the end of its pool's process ("a few")


class Child:
    """A pool_child.py process in its own session; reads its stdout lines with a deadline."""

    def __init__(self, mode: str, kind: str, stderr: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
        with stderr.open("w") as errors:
            self.process = subprocess.Popen(
                [sys.executable, str(CHILD), mode, kind],
                stdout=subprocess.PIPE,
                stderr=errors,
                env=env,
                start_new_session=True,
            )
        self.kind = kind
        self.stderr = stderr
        self._pending = b""
        self.workers: set[int] = set()

    @property
    def pid(self) -> int:
        return self.process.pid

    def read_line(self, timeout: float = WAIT) -> str:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise AssertionError(f"no line from the child in {timeout} s: {self.stderr.read_text()}")
            data = os.read(fd, 4096)
            if not data:
                raise AssertionError(f"the child ended early: {self.stderr.read_text()}")
            self._pending += data
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode()

    def expect(self, word: str) -> list[str]:
        fields = self.read_line().split()
        assert fields and fields[0] == word, f"expected {word}, got {fields}"
        return fields[1:]

    def read_workers(self) -> set[int]:
        self.workers = {int(pid) for pid in self.expect("WORKERS")}
        assert len(self.workers) == 2
        return self.workers

    def end(self) -> None:
        """Cleanup: nothing of this child's session survives the test, whatever happened."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(WAIT)
        kill_all(session_members(self.pid) | running(self.workers))
        if self.process.stdout is not None:
            self.process.stdout.close()


# --- Ctrl-C ---------------------------------------------------------------


def interrupt_once(kind: str, mode: str, tmp_path: Path) -> tuple[float, float]:
    """Ctrl-C a child pool in map; returns the seconds until it exited, and until its workers had."""
    child = Child(mode, kind, tmp_path / f"{kind}-{mode}.stderr")
    try:
        workers = child.read_workers()
        child.expect("MAPPING")
        started = time.monotonic()
        os.killpg(child.pid, signal.SIGINT)  # Ctrl-C: the whole process group
        returncode = child.process.wait(WAIT)
        exited = time.monotonic() - started
        left, _ = wait_until_gone(workers, GRACE)
        assert not left, f"workers {sorted(left)} outlived the interrupted process (SHUT-9)"
        gone = time.monotonic() - started
        others, _ = wait_until_gone(session_members(child.pid), GRACE)
        assert not others, f"processes {sorted(others)} of the session outlived it (SHUT-9)"
        assert returncode != 0, "the map should have been interrupted"
        assert "KeyboardInterrupt" in child.stderr.read_text()
        return exited, gone
    finally:
        child.end()


@pytest.mark.parametrize("mode", ["interrupt-with", "interrupt-bare"])
@pytest.mark.parametrize("kind", PROCESS_KINDS)
@pytest.mark.parametrize("size", SIZES)
def test_ctrl_c_during_map_leaves_no_orphan_worker(size: str, kind: str, mode: str, tmp_path: Path) -> None:
    """Checks SHUT-9: Ctrl-C (SIGINT to the process group) in map, with and without `with`."""
    runs = size_of(size, 1, 20)
    figures = [interrupt_once(kind, mode, tmp_path) for _ in range(runs)]
    print(
        f"\ninterrupt {kind} {mode}: {runs} runs, no orphan; the child exited within "
        f"{max(exited for exited, _ in figures):.2f} s of Ctrl-C, its workers were gone within "
        f"{max(gone for _, gone in figures):.2f} s"
    )


# --- the parent dies --------------------------------------------------------


def parent_death(mode: str, tmp_path: Path, round_: int) -> dict[str, str]:
    """SIGKILL a child pool process of each kind at once; how long its workers outlive it."""
    children = [Child(mode, kind, tmp_path / f"{kind}-{mode}-{round_}.stderr") for kind in PROCESS_KINDS]
    try:
        sessions: dict[str, set[int]] = {}
        for child in children:
            child.read_workers()
            # Workers write STARTED to the same stdout as the child's READY, in any order.
            started: set[int] = set()
            ready = False
            while not ready or (mode == "parent-busy" and len(started) < 2):
                fields = child.read_line().split()
                if fields[0] == "STARTED":
                    started.add(int(fields[1]))
                else:
                    assert fields == ["READY"], f"unexpected line {fields}"
                    ready = True
            if mode == "parent-busy":
                assert started == child.workers, "each worker should be inside a long task"
            sessions[child.kind] = session_members(child.pid)  # workers, forkserver, tracker
        for child in children:
            os.kill(child.pid, signal.SIGKILL)
            child.process.wait(WAIT)
        # One deadline for all: every kind has had GRACE seconds since its process died.
        everyone = set().union(*(sessions[child.kind] - {child.pid} for child in children))
        remaining, took = wait_until_gone(everyone, GRACE)
        outcome: dict[str, str] = {}
        left: dict[str, set[int]] = {}
        for child in children:
            stayed = remaining & sessions[child.kind]
            if stayed:
                left[child.kind] = stayed
                names = sorted("worker" if pid in child.workers else what_process(pid) for pid in stayed)
                outcome[child.kind] = f"{', '.join(names)} still running after {took:.1f} s"
            else:
                outcome[child.kind] = "all gone" + (f" within {took:.2f} s" if not remaining else "")
        print(f"\nparent SIGKILLed, {mode}: " + "; ".join(f"{k}: {v}" for k, v in outcome.items()))
        assert not left, f"processes that outlived their pool's process (SHUT-10): {left}"
        return outcome
    finally:
        for child in children:
            child.end()


@pytest.mark.parametrize("size", SIZES)
def test_a_parent_killed_while_its_workers_wait_leaves_no_worker(size: str, tmp_path: Path) -> None:
    """Checks SHUT-10, for workers blocked waiting for a task (fork, spawn, forkserver at once)."""
    for round_ in range(size_of(size, 1, 10)):
        parent_death("parent-idle", tmp_path, round_)


@pytest.mark.parametrize("size", SIZES)
def test_a_parent_killed_while_its_workers_are_busy_leaves_no_worker(size: str, tmp_path: Path) -> None:
    """Checks SHUT-10, for workers in the middle of a long task (fork, spawn, forkserver at once)."""
    for round_ in range(size_of(size, 1, 5)):
        parent_death("parent-busy", tmp_path, round_)


# --- many callers at once -----------------------------------------------------

CALLERS = 8


def caller(pool: refpool.Pool, me: int, rounds: int, start: threading.Barrier, counts: list[int]) -> None:
    """One caller thread: map, imap and apply_async in turn, each checked to be its own."""
    start.wait(WAIT)
    for round_ in range(rounds):
        items = [(me, round_ * 1000 + i) for i in range(40)]
        step = round_ % 3
        results: list[Any]
        if step == 0:
            results = pool.map(tagged, items, chunksize=3)
        elif step == 1:
            iterator = pool.imap(tagged, items)  # chunksize 1: a generator has no next(timeout)
            results = [iterator.next(WAIT) for _ in items]  # type: ignore[attr-defined]
            with pytest.raises(StopIteration):
                iterator.next(WAIT)  # type: ignore[attr-defined]
        else:
            pending = [pool.apply_async(tagged, (item,)) for item in items]
            results = [result.get(WAIT) for result in pending]
        assert [result[:2] for result in results] == [tuple(item) for item in items], (
            f"caller {me} got another caller's results"
        )
        counts[me] += len(items)


@pytest.mark.parametrize("size", SIZES)
def test_eight_callers_at_once_each_get_their_own_results(size: str, make_pool: MakePool) -> None:
    """Checks SHUT-11, API-1, API-2, API-4, JOB-1: 8 threads use one pool at once."""
    rounds = size_of(size, 6, 300)
    pool = make_pool(3)
    start = threading.Barrier(CALLERS)
    counts = [0] * CALLERS
    errors: list[BaseException] = []

    def run(me: int) -> None:
        try:
            caller(pool, me, rounds, start, counts)
        except BaseException as error:
            errors.append(error)
            start.abort()

    threads = [threading.Thread(target=run, args=(me,), name=f"caller-{me}") for me in range(CALLERS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT * rounds)
    elapsed = time.monotonic() - started
    assert not any(thread.is_alive() for thread in threads), "a caller hung"
    assert not errors, errors[0]
    print(
        f"\nconcurrency {pool!r}: {CALLERS} callers x {rounds} rounds (map, imap, apply_async), "
        f"{sum(counts)} tasks in {elapsed:.1f} s, every caller got its own results"
    )
    pool.close()
    pool.join()


# --- another thread reaps children ----------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_active_children_in_another_thread_while_workers_exit(size: str) -> None:
    """Checks SHUT-11, JOB-1, WORK-4: a caller's thread may call multiprocessing.active_children()
    (which reaps exited children with waitpid) while the pool's workers exit and are replaced."""
    tasks = size_of(size, 400, 5_000)
    # A worker start takes ~5 ms here, and far longer while the poller holds the GIL.
    patience = WAIT + 0.02 * tasks
    pool = refpool.Pool(2, context=multiprocessing.get_context("fork"), maxtasksperchild=4)
    stop = threading.Event()
    polls = 0

    def poll_children() -> None:
        nonlocal polls
        while not stop.is_set():
            multiprocessing.active_children()
            polls += 1

    poller = threading.Thread(target=poll_children, name="active-children-poller")
    poller.start()
    started = time.monotonic()
    try:
        squares = pool.map_async(square, range(tasks), chunksize=1).get(patience)
        assert squares == [x * x for x in range(tasks)]
    finally:
        stop.set()
        poller.join(WAIT)
        pool.terminate()
        pool.join()
    print(
        f"\nreaping race fork: {tasks} tasks, maxtasksperchild 4, {polls} active_children() calls "
        f"meanwhile, {time.monotonic() - started:.1f} s"
    )
