"""Seeded bug: release_in_order that leaves released outcomes pending (JOB-1, API-4).

A copy of refpool.jobs.release_in_order, contract and all, except that it reads
an early outcome out of `pending` without removing it, so imap would yield it
again. CrossHair must find a counterexample (tests/contracts/test_crosshair.py).
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def release_in_order(next_index: int, pending: dict[int, T], index: int, item: T) -> tuple[list[T], int]:
    """Take outcome `item` of task `index`; return the outcomes now due, in order, and the next index.

    `pending` holds the outcomes that came early, by index; it is updated in place.

    pre: 0 <= next_index <= index
    pre: index not in pending
    pre: all(k > next_index for k in pending)
    post[pending]: __return__[1] == next_index + len(__return__[0])
    post: __return__[1] not in pending and all(k > __return__[1] for k in pending)
    post: len(__return__[0]) + len(pending) == len(__old__.pending) + 1
    post: all(pending[k] is ({**__old__.pending, index: item})[k] for k in pending)
    post: all(x is ({**__old__.pending, index: item})[next_index + i] for i, x in enumerate(__return__[0]))
    post: (index == next_index) == (len(__return__[0]) > 0)
    """
    if index != next_index:
        pending[index] = item
        return [], next_index
    released = [item]
    next_index += 1
    while next_index in pending:
        released.append(pending[next_index])  # the bug: should be pending.pop(next_index)
        next_index += 1
    return released, next_index
