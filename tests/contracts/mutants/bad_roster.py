"""Seeded bug: workers_to_start that starts workers in CLOSE though no task waits for one (WORK-2).

A copy of refpool.roster.workers_to_start, contract and all, except that it
forgets what closing means, as if CLOSE never ended growth: it would start
workers that nothing will ever be handed to. CrossHair must find a
counterexample (tests/contracts/test_crosshair.py).
"""

from __future__ import annotations


def workers_to_start(processes: int, live: int, closing: bool, waiting: int, terminating: bool) -> int:
    """How many workers to start now.

    pre: processes >= 1 and 0 <= live <= processes and waiting >= 0
    post: __return__ >= 0
    post: live + __return__ <= processes
    post: not terminating or __return__ == 0
    post: not closing or __return__ <= waiting
    post: terminating or closing or live + __return__ == processes
    post: terminating or not closing or __return__ == min(processes - live, waiting)
    """
    if terminating:  # the bug: `closing` is forgotten
        return 0
    return processes - live
