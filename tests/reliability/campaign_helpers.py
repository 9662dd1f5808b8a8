"""Shared pieces of the reliability campaigns: sizes, measurements, and what workers run.

Functions sent to workers are at module level, so spawn and forkserver workers can
import them (as `reliability.campaign_helpers`: tests/ is on sys.path, conftest.py).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import random
import select
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import pytest

import refpool

# The long versions run only with REFPOOL_LONG=1; REFPOOL_LONG_SCALE (say 0.01)
# shrinks them, to check that they work without waiting for them.
LONG = os.environ.get("REFPOOL_LONG") == "1"
LONG_SCALE = float(os.environ.get("REFPOOL_LONG_SCALE", "1"))
LONG_TIMEOUT = 4 * 3600  # seconds: the long versions are bounded by their sizes, not by pytest

WAIT = 30  # seconds: no call of a campaign waits longer for anything
SIZES = [
    pytest.param("short", id="short"),
    pytest.param(
        "long",
        id="long",
        marks=[
            pytest.mark.skipif(not LONG, reason="long run: set REFPOOL_LONG=1"),
            pytest.mark.timeout(LONG_TIMEOUT),
        ],
    ),
]


def size_of(size: str, short: int, long: int) -> int:
    """The number of cycles or tasks of a run of this size."""
    return short if size == "short" else max(1, round(long * LONG_SCALE))


def make_pool(kind: str, processes: int = 2, **options: Any) -> refpool.Pool:
    if kind == "thread":
        return refpool.ThreadPool(processes, **options)
    return refpool.Pool(processes, context=multiprocessing.get_context(kind), **options)


# --- measurements -----------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def proc_children() -> set[int]:
    """The pids of this process's children, as the kernel lists them (zombies included)."""
    pids: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as listing:
                pids.update(int(pid) for pid in listing.read().split())
        except FileNotFoundError:  # that thread has just ended
            pass
    return pids


@dataclass(frozen=True)
class Snapshot:
    fds: int
    threads: int
    children: int  # multiprocessing.active_children()
    proc_children: int  # /proc: also the forkserver and resource tracker, and zombies

    @staticmethod
    def take() -> Snapshot:
        # active_children() first: it reaps the workers that have exited.
        children = len(multiprocessing.active_children())
        return Snapshot(open_fds(), threading.active_count(), children, len(proc_children()))

    def describe(self, after: Snapshot) -> str:
        return (
            f"fds {self.fds} -> {after.fds}, threads {self.threads} -> {after.threads}, "
            f"children {self.children} -> {after.children}, "
            f"/proc children {self.proc_children} -> {after.proc_children}"
        )


def process_state(pid: int) -> str | None:
    """The state letter of a process (R, S, Z, ...), or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def what_process(pid: int) -> str:
    """ "forkserver", "resource tracker" or "worker", from the command line of a live process."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            words = cmdline.read().decode(errors="replace")
    except FileNotFoundError:
        return "gone"
    if "forkserver" in words:
        return "forkserver"
    if "resource_tracker" in words:
        return "resource tracker"
    return "worker"


def running(pids: set[int]) -> set[int]:
    """Those of these processes that still run (a zombie has exited; its parent has not reaped it)."""
    return {pid for pid in pids if process_state(pid) not in (None, "Z")}


def session_members(session: int) -> set[int]:
    """Every running process of this session (a child started with start_new_session=True)."""
    members: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            pid = int(entry)
            try:
                if os.getsid(pid) == session and process_state(pid) not in (None, "Z"):
                    members.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
    return members


def wait_until_gone(pids: set[int], seconds: float) -> tuple[set[int], float]:
    """Poll until none of these processes runs, or the deadline; returns those left and the time."""
    started = time.monotonic()
    deadline = started + seconds
    left = running(pids)
    while left and time.monotonic() < deadline:
        time.sleep(0.02)  # polling for processes to disappear: nothing can be awaited
        left = running(left)
    return left, time.monotonic() - started


def kill_all(pids: set[int]) -> None:
    """Clean up after a failed check: SIGKILL these processes, by pid, each one."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextmanager
def collector(enabled: bool) -> Iterator[None]:
    """Run with the cyclic garbage collector on, or off (gc.disable()), as it was after."""
    was_enabled = gc.isenabled()
    if not enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- a worker tells the test it has started a task, through a FIFO ----------


class Announcements:
    """A named pipe that workers of any start method can open to say "pid P has started".

    The test holds both ends open for the whole run, so that a reader never sees
    end-of-file between writers, and select() wakes only when a worker writes.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        os.mkfifo(path)
        self._read = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._keep_open = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        self._pending = b""

    def next_pid(self, timeout: float = WAIT) -> int:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._read], [], [], remaining)[0]:
                raise TimeoutError("no worker announced that it had started its task")
            self._pending += os.read(self._read, 4096)
        line, self._pending = self._pending.split(b"\n", 1)
        return int(line)

    def close(self) -> None:
        os.close(self._read)
        os.close(self._keep_open)
        os.unlink(self.path)


def announce_and_sleep(path: str, seconds: float = WAIT) -> int:
    """In a worker: write this pid to the test's FIFO, then wait to be killed (bounded)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, f"{os.getpid()}\n".encode())  # one write, below PIPE_BUF: atomic
    finally:
        os.close(fd)
    time.sleep(seconds)
    return os.getpid()


# --- what tasks return ------------------------------------------------------


class Payload:
    """An object whose lifetime the tests follow through a weakref."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Payload) and other.value == self.value

    def __hash__(self) -> int:
        return hash(self.value)


def next_payload(payload: Payload) -> Payload:
    return Payload(payload.value + 1)


def echo(x: int) -> int:
    return x


def echo_after_work(x: int) -> int:
    """A task long enough for a kill to land in it now and then (about 0.3 ms)."""
    deadline = time.perf_counter() + 0.0003
    while time.perf_counter() < deadline:
        pass
    return x


def tagged(x: tuple[int, int]) -> tuple[int, int, int]:
    """Returns its input with the worker's pid: callers check they get their own items back."""
    return (*x, os.getpid())


def announce_then_sleep(seconds: float) -> float:
    """In a worker of a child script: say on stdout that this task has started, then sleep."""
    # One write of one line: two workers' lines never interleave in the shared pipe.
    os.write(1, f"STARTED {os.getpid()}\n".encode())
    time.sleep(seconds)
    return seconds


# --- the chaos monkey -------------------------------------------------------


class Killer:
    """A thread that SIGKILLs a random live worker of the pool every `interval` seconds."""

    def __init__(self, pool: refpool.Pool, interval: float, seed: int) -> None:
        self._pool = pool
        self._interval = interval
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self.kills = 0
        self._thread = threading.Thread(target=self._run, name="chaos-killer", daemon=True)

    def __enter__(self) -> Killer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the killer thread did not stop"

    def _run(self) -> None:
        while not self._stop.wait(self._interval):  # a pace, not a synchronization
            # Not handle.is_alive(): that reaps the process (waitpid) in this thread,
            # racing the pool's own join (see test_interrupts.py); /proc only looks.
            pids = [h.pid for h in self._pool._live_core().roster.handles()]
            live = [pid for pid in pids if pid is not None and process_state(pid) not in (None, "Z")]
            if not live:
                continue
            pid = self._random.choice(live)
            try:
                os.kill(pid, signal.SIGKILL)
                self.kills += 1
            except ProcessLookupError:
                pass
