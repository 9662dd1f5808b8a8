"""Runs one clause check against one target in a process of its own.

Usage: `python -m refpool.conform.child TARGET CLAUSE`.

It prints one line `RESULT {json}` on stdout and exits at once with os._exit,
so that threads or processes the target leaves behind cannot keep it alive.
If the target crashes the process, there is no RESULT line: the runner reports
CRASH. If it hangs, the runner kills it at the deadline and reports HANG.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from . import clauses, control_clauses  # noqa: F401  (register the checks, in spec order)
from .registry import CHECKS, Broken, Skip
from .targets import TargetUnavailable, parse

RESULT_MARK = "RESULT "


def run(target_spec: str, clause: str) -> dict[str, str]:
    try:
        factory = parse(target_spec).load()
    except TargetUnavailable as error:
        return {"status": "SKIP", "reason": str(error)}
    try:
        CHECKS[clause].run(factory)
    except Skip as skip:
        return {"status": "SKIP", "reason": str(skip)}
    except Broken as broken:
        return {"status": "FAIL", "reason": str(broken)}
    except AssertionError as failed:
        # A bare `assert` says nothing by itself: the reason is the line that failed.
        return {"status": "FAIL", "reason": str(failed) or f"assertion failed: {_where(failed)}"}
    except Exception as error:
        return {"status": "FAIL", "reason": f"{type(error).__name__}: {error} (at {_where(error)})"}
    return {"status": "PASS", "reason": ""}


def _where(error: BaseException) -> str:
    """Where `error` was raised: function, line number and the line's source, if it can be read."""
    last = traceback.extract_tb(error.__traceback__)[-1]
    source = f": {last.line.strip()}" if last.line else ""
    return f"{last.name}:{last.lineno}{source}"


def main() -> None:
    target_spec, clause = sys.argv[1], sys.argv[2]
    result = run(target_spec, clause)
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
