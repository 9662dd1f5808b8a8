"""Chunk arithmetic, pure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refpool.chunking import check_chunksize, chunked, count_chunks, default_chunksize


@pytest.mark.parametrize(
    ("length", "workers", "expected"), [(0, 2, 1), (1, 2, 1), (8, 2, 1), (9, 2, 2), (200_000, 2, 25_000)]
)
def test_default_chunksize_is_cpythons(length: int, workers: int, expected: int) -> None:
    assert default_chunksize(length, workers) == expected


@given(st.integers(0, 10_000), st.integers(1, 64))
def test_default_chunksize_is_the_ceiling(length: int, workers: int) -> None:
    size = default_chunksize(length, workers)
    quotient, remainder = divmod(length, 4 * workers)
    assert size == max(1, quotient + bool(remainder))


@given(st.lists(st.integers(), max_size=50), st.integers(1, 20))
def test_chunks_cover_the_input_in_order(items: list[int], size: int) -> None:
    chunks = list(chunked(iter(items), size))
    assert [x for chunk in chunks for x in chunk] == items
    assert len(chunks) == count_chunks(len(items), size)
    assert all(len(chunk) == size for chunk in chunks[:-1])


def test_chunked_is_lazy() -> None:
    read: list[int] = []

    def source() -> object:
        for i in range(100):
            read.append(i)
            yield i

    first = next(chunked(source(), 3))  # type: ignore[call-overload]
    assert first == (0, 1, 2)
    assert read == [0, 1, 2]


@pytest.mark.parametrize("bad", [0, -1])
def test_a_chunksize_below_one_is_refused(bad: int) -> None:
    with pytest.raises(ValueError, match=f"Chunksize must be 1\\+, not {bad}"):
        check_chunksize(bad)


@pytest.mark.parametrize("bad", [1.5, "2", None, True])
def test_a_chunksize_that_is_not_an_int_is_refused(bad: object) -> None:
    with pytest.raises(TypeError, match="chunksize must be an int"):
        check_chunksize(bad)
