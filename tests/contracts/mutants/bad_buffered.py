"""Seeded bug: a buffered imap that draws one task too many (BUF-1; gh-131466 in concurrent.futures).

A copy of refpool.buffered.may_draw, contract and all, except that it allows
`buffersize` + 1 tasks whose results the caller has not taken. CrossHair must
find a counterexample (tests/contracts/test_crosshair.py).
"""

from __future__ import annotations


def may_draw(drawn: int, taken: int, buffersize: int) -> bool:
    """Whether one more task may be drawn from the input.

    pre: 0 <= taken <= drawn and buffersize >= 1 and drawn - taken <= buffersize
    post: __return__ == (drawn - taken < buffersize)
    post: not __return__ or drawn + 1 - taken <= buffersize
    """
    return drawn - taken <= buffersize  # the bug: one more while the buffer is full
