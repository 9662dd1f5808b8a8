"""Case 6 in a fresh process: `python -m benchmarks.rss_probe TARGET --items N ...`.

A fork of the probe is the pool's parent. It consumes imap's results slowly, then prints,
as one JSON line, its own peak RSS (`ru_maxrss` of RUSAGE_SELF: the workers are not
counted) and how long the consumption took. A fresh process per sample, so that no earlier
case, and no other target, has raised the high-water mark already.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from . import work
from .harness import NotApplicable

# The folder that holds the benchmarks package: the probe runs from there, so that
# `-m benchmarks.rss_probe` finds the package whatever the caller's working folder.
ROOT = Path(__file__).resolve().parent.parent
# Beyond this a probe is stopped and its cell says so; 2,000,000 items take about a minute.
TIMEOUT_SECONDS = 900.0


def peak_rss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB elsewhere


def main(argv: Sequence[str] | None = None) -> int:
    from .targets import TARGETS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.rss_probe", description=__doc__)
    parser.add_argument("target", choices=list(TARGETS))
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--chunksize", type=int, required=True)
    parser.add_argument("--buffersize", type=int)
    args = parser.parse_args(argv)

    # The pool's parent is a fork of this process, not this process itself: Linux keeps
    # ru_maxrss across execve, so a process started by a runner that once held 500 MiB
    # reports at least 500 MiB (measured). A forked child starts its own count, from the
    # size of this small interpreter.
    child = os.fork()
    if child == 0:
        code = 1
        try:
            code = probe(args.target, args.items, args.chunksize, args.buffersize)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


def probe(target: str, items: int, chunksize: int, buffersize: int | None) -> int:
    """Consume `items` results of imap slowly, then print this process's peak RSS."""
    from .cases import PROCESS_METHOD, WARM_UP
    from .targets import TARGETS

    pool = TARGETS[target].adapter()
    pool.start(PROCESS_METHOD)
    try:
        pool.map(work.magnitude, WARM_UP, None)
        start = time.perf_counter()
        consumed = 0
        for item in pool.imap(work.echo, work.kilobyte_items(items), chunksize, buffersize):
            work.consume_slowly(item)
            consumed += 1
        seconds = time.perf_counter() - start
    except NotApplicable as reason:
        print(json.dumps({"not_applicable": str(reason)}))
        return 0
    finally:
        pool.stop()
    if consumed != items:
        print(f"rss_probe: {target} gave {consumed} results for {items} items", file=sys.stderr)
        return 1
    print(json.dumps({"maxrss_kib": peak_rss_kib(), "seconds": seconds, "items": consumed}))
    return 0


class ProbeFailed(RuntimeError):
    """The probe process exited with an error; the message holds the end of its stderr."""


def peak_rss_mib(target: str, items: int, chunksize: int, buffersize: int | None = None) -> float:
    """Run the probe for `target` in a fresh interpreter and return its peak RSS in MiB."""
    command = [sys.executable, "-m", "benchmarks.rss_probe", target]
    command += ["--items", str(items), "--chunksize", str(chunksize)]
    if buffersize is not None:
        command += ["--buffersize", str(buffersize)]
    # A session of its own, so that a probe past its deadline is ended with its workers.
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as probe:
        try:
            out, err = probe.communicate(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(probe.pid, signal.SIGKILL)
            probe.communicate()
            raise NotApplicable(
                f"{target} did not finish {items:,} items within {TIMEOUT_SECONDS:.0f} s"
            ) from None
    if probe.returncode != 0:
        tail = " | ".join(err.strip().splitlines()[-3:])
        raise ProbeFailed(f"rss_probe {target} exited with {probe.returncode}: {tail}")
    report = json.loads(out.strip().splitlines()[-1])
    if "not_applicable" in report:
        raise NotApplicable(report["not_applicable"])
    return float(report["maxrss_kib"]) / 1024


if __name__ == "__main__":
    sys.exit(main())
