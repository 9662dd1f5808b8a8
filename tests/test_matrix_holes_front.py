"""Checks the clause-by-mutant matrix showed no other test made (tests/matrix/)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
