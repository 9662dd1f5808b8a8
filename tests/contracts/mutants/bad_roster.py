"""Seeded bug: workers_to_start that replaces workers after the sentinels were sent (WORK-2).

A copy of refpool.roster.workers_to_start, contract and all, except that it
stops starting workers only on terminate, as if CLOSE alone never ended growth:
after shutdown has begun it would start a worker that no sentinel will ever
reach. CrossHair must find a counterexample (tests/contracts/test_crosshair.py).
"""

from __future__ import annotations


def workers_to_start(processes: int, live: int, shutdown_begun: bool, terminating: bool) -> int:
    """How many workers to start now so that `live` is `processes` again.

    pre: processes >= 1 and 0 <= live <= processes
    post: __return__ >= 0
    post: live + __return__ <= processes
    post: not (shutdown_begun or terminating) or __return__ == 0
    post: shutdown_begun or terminating or live + __return__ == processes
    """
    if terminating:  # the bug: shutdown_begun is forgotten
        return 0
    return processes - live
