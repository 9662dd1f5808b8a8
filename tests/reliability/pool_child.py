"""A Python process that runs a pool, for the interrupt tests: python pool_child.py MODE KIND.

It prints `WORKERS pid pid` once its workers are up, then, by MODE:
- interrupt-with: `MAPPING`, then a long map inside `with Pool(...)`;
- interrupt-bare: the same without `with` (the pool's finalizer ends it at exit);
- parent-idle: `READY`, then waits forever with idle workers;
- parent-busy: each worker prints `STARTED pid` from inside a long task, then
  this process prints `READY` and waits forever.
The test interrupts or kills it, and checks that no worker outlives it.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading

import refpool

from pool_helpers import sleep_for
from reliability.campaign_helpers import announce_then_sleep, echo

LONG_TASK = 60.0  # seconds: far longer than any test waits


def say(line: str) -> None:
    """One line to the test, in one write: a worker's line never lands inside it."""
    os.write(1, f"{line}\n".encode())


def workers_line() -> str:
    return "WORKERS " + " ".join(str(p.pid) for p in multiprocessing.active_children())


def main(mode: str, kind: str) -> None:
    context = multiprocessing.get_context(kind)
    if mode == "interrupt-with":
        with refpool.Pool(2, context=context) as pool:
            pool.map(echo, range(4))
            say(workers_line())
            say("MAPPING")
            pool.map(sleep_for, [0.2] * 200, chunksize=1)
    elif mode == "interrupt-bare":
        pool = refpool.Pool(2, context=context)
        pool.map(echo, range(4))
        say(workers_line())
        say("MAPPING")
        pool.map(sleep_for, [0.2] * 200, chunksize=1)
    else:
        pool = refpool.Pool(2, context=context)
        pool.map(echo, range(4))
        say(workers_line())
        if mode == "parent-busy":
            # Two tasks end up in two workers: an idle worker takes back what a busy one
            # has not started (WORK-5); each worker says so once it is inside its task.
            pending = [pool.apply_async(announce_then_sleep, (LONG_TASK,)) for _ in range(2)]
            assert pending
        elif mode != "parent-idle":
            raise SystemExit(f"unknown mode {mode!r}")
        say("READY")
        threading.Event().wait()  # until the test kills this process


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
