"""Seeded bug: a worker that starts a task the parent has taken back (WORK-6).

A copy of refpool.claims.may_start, contract and all, except that it ignores
`revoked`: the task then runs in this worker and in the one it was given to.
CrossHair must find a counterexample (tests/contracts/test_crosshair.py).
"""

from __future__ import annotations


def may_start(number: int, revoked: int) -> bool:
    """Whether the worker may start the task numbered `number` (else it skips it).

    pre: number >= 1 and revoked >= 0
    post: __return__ == (number > revoked)
    """
    return True  # the bug: a task taken back is started all the same
