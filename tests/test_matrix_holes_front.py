"""Checks the clause-by-mutant matrix showed no other test made (tests/matrix/)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading

import pytest

from pool_helpers import MakePool, square

WAIT = 30.0  # seconds: a bound on waits that end in milliseconds unless the pool is broken

ONE_CPU = """
import os, refpool
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
pool = refpool.ThreadPool()
print(repr(pool))
pool.terminate()
pool.join()
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs os.sched_setaffinity (Linux)")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="on a one-CPU machine every count of CPUs is 1")
def test_processes_none_counts_only_the_cpus_this_process_may_use() -> None:
    """Checks API-12 where it differs from os.cpu_count(): a process allowed one CPU of several
    gets one worker (the mutant processes-all-cpus passed every other test on a machine whose
    process may use all its CPUs)."""
    done = subprocess.run(
        [sys.executable, "-c", ONE_CPU], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pool_size=1>" in done.stdout, done.stdout + done.stderr


def test_get_waits_while_the_callback_runs(make_pool: MakePool) -> None:
    """Checks JOB-4: while the callback runs (held here), the job is not ready and get() times
    out (the mutant event-before-callback passed every other check: their callbacks are quick)."""
    entered, release = threading.Event(), threading.Event()

    def held(_: object) -> None:
        entered.set()
        release.wait(WAIT)

    pool = make_pool(2)
    job = pool.apply_async(square, (4,), callback=held)
    try:
        assert entered.wait(WAIT)
        assert not job.ready()
        with pytest.raises(multiprocessing.TimeoutError):
            job.get(0.2)
    finally:
        release.set()
    assert job.get(WAIT) == 16
