"""Seeded bug: default_chunksize with the ceiling trick off by one (API-3).

A copy of refpool.chunking.default_chunksize, contract and all, except that it
adds `4 * workers` before dividing instead of `4 * workers - 1`: when the length
is a multiple of 4 * workers it answers one chunk size too many. CrossHair must
find a counterexample (tests/contracts/test_crosshair.py).
"""

from __future__ import annotations


def default_chunksize(length: int, workers: int) -> int:
    """CPython's default for map: ceil(length / (4 * workers)), at least 1.

    pre: length >= 0 and workers >= 1
    post: __return__ >= 1
    post: length == 0 or (__return__ - 1) * 4 * workers < length <= __return__ * 4 * workers
    """
    return max(1, (length + 4 * workers) // (4 * workers))  # the bug: should be `- 1` inside
