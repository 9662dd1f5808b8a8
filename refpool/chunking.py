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


def default_chunksize(length: int, workers: int) -> int:
    """CPython's default for map: ceil(length / (4 * workers)), at least 1.

    pre: length >= 0 and workers >= 1
    post: __return__ >= 1
    post: length == 0 or (__return__ - 1) * 4 * workers < length <= __return__ * 4 * workers
    """
    return max(1, -(-length // (4 * workers)))


def count_chunks(length: int, chunksize: int) -> int:
    """How many chunks of `chunksize` items cover `length` items.

    pre: length >= 0 and chunksize >= 1
    post: (__return__ - 1) * chunksize < length <= __return__ * chunksize or (length == 0 == __return__)
    """
    return -(-length // chunksize)


def chunked(iterable: Iterable[T], chunksize: int) -> Iterator[tuple[T, ...]]:
    """Successive tuples of `chunksize` items; the last may be shorter. Lazy."""
    iterator = iter(iterable)
    while chunk := tuple(itertools.islice(iterator, chunksize)):
        yield chunk
