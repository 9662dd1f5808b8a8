"""`refpool trace`: its options, and running it (wired into refpool/cli.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Final, TextIO

from . import html, mermaid, text
from .record import Trace
from .scenarios import SCENARIOS, run_scenario

RENDERERS: Final[dict[str, Callable[[Trace], str]]] = {
    "text": text.render,
    "mermaid": mermaid.render,
    "html": html.render,
}
MOST_WORKERS: Final = 16  # more lanes than a page or a diagram can show side by side


def worker_count(value: str) -> int:
    """--workers: a whole number from 1 to MOST_WORKERS; argparse names the bad value."""
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of workers, not {value!r}") from None
    if not 1 <= count <= MOST_WORKERS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MOST_WORKERS}, not {value!r}")
    return count


def add_arguments(trace: argparse.ArgumentParser) -> None:
    trace.add_argument(
        "--workers", type=worker_count, default=2, metavar="N", help="worker processes (default 2)"
    )
    trace.add_argument(
        "--scenario",
        choices=tuple(SCENARIOS),
        default="map",
        help="map: a map, then close and join; close: close() with work in flight; terminate: "
        "terminate() with work in flight; crash: a task kills its worker; timeout: a task runs "
        "past its timeout (default map)",
    )
    trace.add_argument("--format", choices=tuple(RENDERERS), default="text", help="default text")
    trace.add_argument("--output", metavar="FILE", help="write the trace here instead of standard output")


def run(args: argparse.Namespace) -> int:
    out: TextIO = sys.stdout
    if args.output:
        try:  # before the pool runs: a file that cannot be written is said at once
            out = open(args.output, "w", encoding="utf-8")  # noqa: SIM115  (closed below)
        except OSError as error:
            print(f"refpool trace: cannot write --output {args.output!r}: {error.strerror}", file=sys.stderr)
            return 2
    try:
        out.write(RENDERERS[args.format](run_scenario(args.scenario, args.workers)))
    finally:
        if out is not sys.stdout:
            out.close()
    return 0
