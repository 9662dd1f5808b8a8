"""The bytes on a process worker's pipes (refpool/wire.py), pure."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import struct
from collections.abc import Iterator

import pytest

from refpool import wire
from refpool.messages import Call, Outcome


@pytest.fixture
def pickler() -> wire.Pickler:
    return wire.Pickler()


def framed(buffers: list[bytes | memoryview]) -> bytes:
    return b"".join(bytes(b) for b in buffers)


def test_a_task_keeps_its_number_job_and_position_beside_its_pickled_call(pickler: wire.Pickler) -> None:
    packed = wire.pack_task(2**40, 7, Call(divmod, (7, 2), {"x": 1}), pickler)
    [frame] = wire.FrameReader().feed(framed(wire.task_frame(3, packed)))
    number, job_id, position, pickled = wire.unpack_task(frame)
    assert (number, job_id, position) == (3, 2**40, 7)
    assert wire.open_call(pickled) == (divmod, (7, 2), {"x": 1})


def test_a_prepared_task_can_go_out_under_two_numbers(pickler: wire.Pickler) -> None:
    """After a take-back the same prepared task is written to another worker (WORK-6)."""
    packed = wire.pack_task(1, 0, Call(abs, (-1,), {}), pickler)
    first = wire.FrameReader().feed(framed(wire.task_frame(5, packed)))
    second = wire.FrameReader().feed(framed(wire.task_frame(2, packed)))
    assert [wire.unpack_task(f)[0] for f in (*first, *second)] == [5, 2]


def test_a_call_that_cannot_be_pickled_raises_when_packed(pickler: wire.Pickler) -> None:
    """ERR-3: the task handler fails the job with this error, and its pickler stays usable."""
    with pytest.raises((AttributeError, pickle.PicklingError), match=r"pickle"):
        wire.pack_task(0, 0, Call(lambda: None, (), {}), pickler)
    packed = wire.pack_task(0, 0, Call(abs, (1,), {}), pickler)
    [frame] = wire.FrameReader().feed(framed(wire.task_frame(1, packed)))
    assert wire.open_call(wire.unpack_task(frame)[3]) == (abs, (1,), {})


def test_the_pickler_uses_reducers_registered_after_it_was_made(pickler: wire.Pickler) -> None:
    """As ForkingPickler.dumps: multiprocessing registers reducers as its modules are imported."""

    class Registered:
        pass

    from multiprocessing.reduction import ForkingPickler

    ForkingPickler.register(Registered, lambda obj: (int, (42,)))
    try:
        assert pickle.loads(pickler.dumps(Registered())) == 42
    finally:
        del ForkingPickler._extra_reducers[Registered]  # type: ignore[attr-defined]


def test_the_shutdown_sentinel_is_an_empty_frame() -> None:
    [frame] = wire.FrameReader().feed(framed(wire.frame(wire.SHUTDOWN_FRAME)))
    assert frame == wire.SHUTDOWN_FRAME
    with pytest.raises(struct.error):
        wire.unpack_task(frame)


def test_frames_are_split_however_the_bytes_arrive() -> None:
    payloads = [b"", b"x", b"y" * 100, b"z" * 70_000]
    stream = framed([part for payload in payloads for part in wire.frame(payload)])
    for step in (1, 7, 4096, len(stream)):
        reader = wire.FrameReader()
        pieces = [stream[start : start + step] for start in range(0, len(stream), step)]
        got = [bytes(f) for piece in pieces for f in reader.feed(piece)]
        assert got == payloads, step
        assert reader.missing == 0


def test_a_frame_that_has_begun_says_how_much_it_still_needs() -> None:
    reader = wire.FrameReader()
    stream = framed(wire.frame(b"abcdef"))  # an 8-byte length, then 6 bytes
    assert reader.feed(stream[:3]) == [] and reader.missing == 5  # the rest of the length, at least
    assert reader.feed(stream[3:10]) == [] and reader.missing == 4
    assert [bytes(f) for f in reader.feed(stream[10:])] == [b"abcdef"] and reader.missing == 0


def reading(fd: int) -> Iterator[bytes]:
    while data := os.read(fd, 65536):
        yield data


def test_write_frames_writes_everything_through_a_pipe_smaller_than_the_message() -> None:
    """A write bigger than the pipe is finished in parts, as another process reads."""
    child_r, parent_w = os.pipe()
    result_r, result_w = os.pipe()
    reader = multiprocessing.get_context("fork").Process(
        target=_frame_lengths, args=(child_r, result_w, (parent_w, result_r))
    )
    reader.start()
    os.close(child_r)
    os.close(result_w)
    wire.write_frames(parent_w, [*wire.frame(b"q" * 300_000), *wire.frame(b"end")])
    os.close(parent_w)
    report = b"".join(reading(result_r))
    os.close(result_r)
    reader.join()
    assert report == b"300000,3"


def _frame_lengths(read_end: int, result: int, parents_ends: tuple[int, int]) -> None:
    for fd in parents_ends:  # forked with the parent's ends: the pipe would never end
        os.close(fd)
    reader = wire.FrameReader()
    frames = [bytes(f) for data in reading(read_end) for f in reader.feed(data)]
    os.write(result, ",".join(str(len(f)) for f in frames).encode())


@pytest.mark.parametrize("remote_traceback", [None, "Traceback: ünïcode\n  line"])
def test_an_outcome_keeps_its_header_traceback_and_payload(
    remote_traceback: str | None, pickler: wire.Pickler
) -> None:
    payload = pickler.dumps(ValueError("bad"))
    outcome = wire.unpack_outcome(wire.pack_outcome(3, 4, False, payload, remote_traceback))
    assert outcome._replace(payload=None) == Outcome(3, 4, False, None, remote_traceback)
    value = wire.loads(outcome.payload)
    assert isinstance(value, ValueError) and value.args == ("bad",)


def test_a_payload_that_cannot_be_unpickled_fails_only_when_opened() -> None:
    """ERR-2: the header is readable, so the result handler knows whose job to fail."""
    outcome = wire.unpack_outcome(wire.pack_outcome(5, 6, True, b"not a pickle", None))
    assert (outcome.job_id, outcome.position, outcome.success) == (5, 6, True)
    with pytest.raises(pickle.UnpicklingError):
        wire.loads(outcome.payload)
