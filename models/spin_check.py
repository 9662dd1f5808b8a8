"""Run SPIN on models/pool.pml: generate, compile and run the verifier in a temporary directory.

`run_spin(workers, ...)` returns a `Result` with the error count, the states stored, whether
the search was complete and, on an error, the replayed counterexample. A safety run checks
assertions and invalid end states (pan compiled with -DSAFETY -DNOCLAIM); a run with
`ltl="done"` checks that LTL property for acceptance cycles (pan -a -N done). Every search is
exhaustive: states are stored whole (-DCOLLAPSE compresses them without loss), never hashed
into a bitstate. pan is compiled with -O1 (-O2 takes twice as long to compile, more than it
saves on the model's small configurations) and -DNOFAIR (no run uses weak fairness). Nothing
is written into the repository: pan, pan.c and the trail live in a temporary directory.

    python -m models.spin_check --workers 3 --tasks 4 --crashes 0 [--depth 3] [--ltl done]
        [--terminate] [--write-later] [--any-order] [--cancel 2] [--timeouts 1] [--buffer 2]
        [-D BUG_CLAIM_WITHOUT_LOCK] [--trail]
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

MODEL = Path(__file__).resolve().with_name("pool.pml")
# The model's seeded bugs (its header says what each one does).
SEEDED_BUGS = (
    "BUG_ONE_SENTINEL_TOO_FEW",
    "BUG_START_AFTER_CLOSE",
    "BUG_DROP_TASK_ON_CRASH",
    "BUG_FAIL_ALL_ON_CRASH",
    "BUG_SENTINEL_OVERTAKES_TASK",
    "BUG_NO_HANDOUT_ON_OUTCOME",
    "BUG_NO_TAKE_BACK",
    "BUG_CLAIM_WITHOUT_LOCK",
    "BUG_TAKE_BACK_WITHOUT_SKIP",
    # Each of these turns on its feature (CANCEL=2, TIMEOUTS=1, BUFFER=2) unless it is set.
    "BUG_CANCEL_LEAVES_INBOX",
    "BUG_CANCEL_DROPS_OTHERS",
    "BUG_TIMEOUT_REQUEUES_RUNNING",
    "BUG_REFILL_BEFORE_TAKE",
)
MAX_DEPTH = 100_000  # pan's -m; far above the model's depth (about 300 at N=3), so no truncation


class SpinNotInstalled(RuntimeError):
    """`spin` or `gcc` is not on PATH."""


@dataclasses.dataclass(frozen=True)
class Result:
    defines: tuple[str, ...]
    ltl: str | None
    errors: int
    states_stored: int
    depth_reached: int
    complete: bool  # the whole state space was searched: no depth truncation, no hash bitstate
    seconds: float
    output: str  # pan's report
    trail: str  # `spin -t -p` of the counterexample, "" when there is none

    @property
    def first_error(self) -> str:
        """pan's line naming the first error, e.g. 'pan:1: assertion violated ...'."""
        for line in self.output.splitlines():
            if line.startswith("pan:") and (
                "violated" in line or "invalid end state" in line or "acceptance cycle" in line
            ):
                return line
        return ""

    def summary(self) -> str:
        what = f"ltl {self.ltl}" if self.ltl else "safety"
        extent = "complete" if self.complete else "INCOMPLETE"
        error = f" ({self.first_error})" if self.errors else ""
        return (
            f"{' '.join(self.defines) or '(defaults)'} [{what}]: errors={self.errors}{error}, "
            f"states={self.states_stored}, depth={self.depth_reached}, {extent}, {self.seconds:.2f} s"
        )


def require_tools() -> None:
    missing = [tool for tool in ("spin", "gcc") if shutil.which(tool) is None]
    if missing:
        raise SpinNotInstalled(
            f"{' and '.join(missing)} not found on PATH: install them to check models/pool.pml "
            "(Debian: apt-get update && apt-get install -y spin gcc)"
        )


def run_spin(
    workers: int,
    tasks: int = 3,
    crashes: int = 1,
    defines: Sequence[str] = (),
    ltl: str | None = None,
    timeout: float = 120.0,
    terminate: bool = False,
    ignore_assertions: bool = False,
    depth: int = 2,
    write_later: bool = False,
    any_order: bool = False,
    optimize: bool = True,
    cancel: int = 0,
    timeouts: int = 0,
    buffer: int = 0,
) -> Result:
    """Check the model with `workers` workers; `defines` are extra macros (e.g. a seeded bug).

    `depth` is how many tasks a worker holds at most; `write_later` models each worker's
    outgoing queue and the later write from it; `any_order` breaks ties between equally busy
    workers every possible way. `cancel=k` makes tasks 1..k a job that may be cancelled at any
    moment (CANCEL-1); `timeouts` bounds how many times a running task's time may be up (TIME-2);
    `buffer=b` makes the caller an imap with buffersize b, consumed in order (BUF-1). `ltl`
    names an `ltl` block of the model to check instead of safety; `ignore_assertions` (pan -A)
    shows that the property alone finds an error.
    `optimize=False` compiles pan without optimisation, in a second instead of three: for a
    run that stops at its first error (a seeded bug), not for a whole search.
    """
    require_tools()
    flags = (
        f"N={workers}",
        f"T={tasks}",
        f"DEPTH={depth}",
        f"CRASHES={crashes}",
        f"TERMINATE={int(terminate)}",
        *(["WRITE_LATER=1"] if write_later else []),
        *(["ANY_ORDER"] if any_order else []),
        *([f"CANCEL={cancel}"] if cancel else []),
        *([f"TIMEOUTS={timeouts}"] if timeouts else []),
        *([f"BUFFER={buffer}"] if buffer else []),
        *defines,
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="refpool-spin-") as scratch:
        work = Path(scratch)
        model = work / MODEL.name
        shutil.copyfile(MODEL, model)

        def run(argv: list[str]) -> str:
            try:
                done = subprocess.run(
                    argv, cwd=work, capture_output=True, text=True, timeout=timeout, check=False
                )
            except subprocess.TimeoutExpired:
                raise RuntimeError(
                    f"{' '.join(argv)} did not finish in {timeout} s: check fewer workers or tasks"
                ) from None
            if done.returncode != 0 and argv[0] != "./pan":
                raise RuntimeError(
                    f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                )
            return done.stdout + done.stderr

        run(["spin", *(f"-D{flag}" for flag in flags), "-a", model.name])
        cflags = ["-DSAFETY", "-DNOCLAIM"] if ltl is None else []
        level = "-O1" if optimize else "-O0"
        run(["gcc", level, "-w", "-DCOLLAPSE", "-DNOFAIR", *cflags, "-o", "pan", "pan.c"])
        pan = ["./pan", f"-m{MAX_DEPTH}"]
        if ltl is not None:
            pan += ["-a", "-N", ltl]
        if ignore_assertions:
            pan.append("-A")
        output = run(pan)
        trail = ""
        if any(work.glob("*.trail")):
            trail = run(["spin", *(f"-D{flag}" for flag in flags), "-t", "-p", model.name])
    return Result(
        defines=flags,
        ltl=ltl,
        errors=_number(r"errors: (\d+)", output),
        states_stored=_number(r"(\d+) states, stored", output),
        depth_reached=_number(r"depth reached (\d+)", output),
        complete=_complete(output),
        seconds=time.monotonic() - started,
        output=output,
        trail=trail,
    )


def _number(pattern: str, output: str) -> int:
    match = re.search(pattern, output)
    if match is None:
        raise RuntimeError(f"pan's report has no {pattern!r}:\n{output}")
    return int(match.group(1))


def _complete(output: str) -> bool:
    truncated = "max search depth too small" in output or "Bit statespace search" in output
    return "Full statespace search" in output and not truncated


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", "-n", type=int, default=2)
    parser.add_argument("--tasks", "-t", type=int, default=3)
    parser.add_argument("--crashes", "-c", type=int, default=1)
    parser.add_argument("--depth", "-d", type=int, default=2, help="tasks a worker holds at most (2..4)")
    parser.add_argument("--terminate", action="store_true", help="model a concurrent terminate()")
    parser.add_argument(
        "--write-later", action="store_true", help="model the outgoing queues and their later writes"
    )
    parser.add_argument(
        "--any-order", action="store_true", help="break ties between equally busy workers every way"
    )
    parser.add_argument("--cancel", type=int, default=0, help="tasks 1..K are a job that may be cancelled")
    parser.add_argument("--timeouts", type=int, default=0, help="times a running task's time may be up")
    parser.add_argument("--buffer", type=int, default=0, help="the caller is an imap with this buffersize")
    parser.add_argument("--ltl", help="check this ltl block (e.g. done) instead of safety")
    parser.add_argument("-D", dest="defines", action="append", default=[], help="a macro, e.g. a seeded bug")
    parser.add_argument("-A", dest="ignore_assertions", action="store_true", help="pan -A")
    parser.add_argument("--trail", action="store_true", help="print the counterexample")
    args = parser.parse_args(argv)
    try:
        result = run_spin(
            args.workers,
            args.tasks,
            args.crashes,
            args.defines,
            args.ltl,
            terminate=args.terminate,
            ignore_assertions=args.ignore_assertions,
            depth=args.depth,
            write_later=args.write_later,
            any_order=args.any_order,
            cancel=args.cancel,
            timeouts=args.timeouts,
            buffer=args.buffer,
        )
    except SpinNotInstalled as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    if args.trail and result.trail:
        print(result.trail)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
