"""Seeded bug: release_in_order that leaves released outcomes pending (JOB-1, API-4).

A copy of refpool.jobs.release_in_order, contract and all, except that it reads
an early outcome out of `pending` without removing it, so imap would yield it
again. CrossHair must find a counterexample (tests/contracts/test_crosshair.py).
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def release_in_order(due: int, pending: dict[int, T], position: int, item: T) -> tuple[list[T], int]:
    """Take outcome `item` of task `position`; return the outcomes now released, in order, and the
    position due next (`due` is the one due before).

    `pending` holds the outcomes that came early, by position; it is updated in place.

    pre: 0 <= due <= position
    pre: position not in pending
    pre: all(k > due for k in pending)
    post[pending]: __return__[1] == due + len(__return__[0])
    post: __return__[1] not in pending and all(k > __return__[1] for k in pending)
    post: len(__return__[0]) + len(pending) == len(__old__.pending) + 1
    post: all(pending[k] is ({**__old__.pending, position: item})[k] for k in pending)
    post: all(x is ({**__old__.pending, position: item})[due + i] for i, x in enumerate(__return__[0]))
    post: (position == due) == (len(__return__[0]) > 0)
    """
    if position != due:
        pending[position] = item
        return [], due
    released = [item]
    due += 1
    while due in pending:
        released.append(pending[due])  # the bug: should be pending.pop(due)
        due += 1
    return released, due
