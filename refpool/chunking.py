"""Chunk arithmetic for map, starmap and imap: pure functions, no pool."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def check_chunksize(chunksize: object) -> int:
    """Return `chunksize` if it is an int of at least 1; raise otherwise.

    CPython's map() accepts 0 and silently returns Nones; refpool refuses it.
    """
    if isinstance(chunksize, bool) or not isinstance(chunksize, int):
        raise TypeError(f"chunksize must be an int, not {chunksize!r}")
    if chunksize < 1:
        raise ValueError(f"Chunksize must be 1+, not {chunksize!r}")
    return chunksize


# API-3: the default map chunksize is ceil(n / (4 * processes)), at least 1.
# The contracts in this file are checked by CrossHair (tests/contracts/).
def default_chunksize(length: int, workers: int) -> int:
    """CPython's default for map: ceil(length / (4 * workers)), at least 1.

    pre: length >= 0 and workers >= 1
    post: __return__ >= 1
    post: length == 0 or (__return__ - 1) * 4 * workers < length <= __return__ * 4 * workers
    """
    return max(1, -(-length // (4 * workers)))


# API-2: a map job is one task per chunk, and the chunks cover the input
# exactly: the fewest chunks of `chunksize` that hold `length` items.
def count_chunks(length: int, chunksize: int) -> int:
    """How many chunks of `chunksize` items cover `length` items.

    pre: length >= 0 and chunksize >= 1
    post: (__return__ - 1) * chunksize < length <= __return__ * chunksize or (length == 0 == __return__)
    """
    return -(-length // chunksize)


# API-2: the results of chunk `position` go to [start, stop) of the map's list,
# so the list comes out in input order; consecutive chunks tile it with no gap
# or overlap, and only the last one may be short.
def chunk_bounds(position: int, chunksize: int, length: int) -> tuple[int, int]:
    """The slice [start, stop) of a `length`-item input that chunk `position` covers.

    pre: length >= 0 and chunksize >= 1
    pre: 0 <= position < count_chunks(length, chunksize)
    post: __return__[0] == position * chunksize
    post: 0 <= __return__[0] < __return__[1] <= length
    post: __return__[1] - __return__[0] == chunksize or __return__[1] == length
    post: position + 1 < count_chunks(length, chunksize) or __return__[1] == length
    """
    start = position * chunksize
    return start, min(start + chunksize, length)


def chunked(iterable: Iterable[T], chunksize: int) -> Iterator[tuple[T, ...]]:
    """Successive tuples of `chunksize` items; the last may be shorter. Lazy."""
    iterator = iter(iterable)
    while chunk := tuple(itertools.islice(iterator, chunksize)):
        yield chunk
