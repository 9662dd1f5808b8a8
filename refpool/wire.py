"""How tasks and outcomes cross between processes: frames on a pipe, a fixed header, one pickle.

Each message is a frame: its length (8 bytes), then its bytes. Frames let
either side move many messages with one system call: the parent writes all
the tasks it has for a worker at once (`write_frames`), and each side reads
whatever has arrived and splits it (`FrameReader`). A worker that runs small
tasks faster than the parent can keep up otherwise costs the parent a
select, two reads and a write per task (benchmarks/README.md).

The header says whose task or outcome it is (job id and position), so that a
call the worker cannot unpickle fails only its own job (ERR-3's twin on the
worker's side) and a result the parent cannot unpickle fails only its own job
(ERR-2; CPython hangs: gh-79492). Only the user's objects are pickled, once
each way: a pickled envelope around a pickled payload would cost a second
pickling per task, on both sides.

Task:     its number among the tasks sent to this worker (8 bytes; see
          claims.py), job id, position (8 bytes each), then the pickled
          call as a plain tuple (func, args, kwds): a named tuple costs
          its class's lookup on both sides, half again the time. The task
          handler prepares all but the number once (`pack_task`), before it
          knows which worker will take the task; the number is written in
          front as the frame goes out.
Outcome:  job id, position, success (1 byte), traceback length (4 bytes),
          the traceback text (UTF-8, a process worker's), then the pickled
          value or exception.
Shutdown: an empty frame.
"""

from __future__ import annotations

import collections
import copyreg
import io
import os
import pickle
import struct
from collections.abc import Sequence
from multiprocessing.reduction import ForkingPickler
from typing import Any, Final

from .messages import Call, CallTuple, Outcome

_LENGTH: Final = struct.Struct("!Q")
_NUMBER: Final = struct.Struct("!q")
_TASK: Final = struct.Struct("!qq")
_OUTCOME: Final = struct.Struct("!qq?I")
SHUTDOWN_FRAME: Final = b""
# Bytes a numbered task takes in a pipe beyond what `pack_task` made.
TASK_OVERHEAD: Final = _LENGTH.size + _NUMBER.size
READ_SIZE: Final = 65536  # a pipe's capacity on Linux: whatever has arrived, in one read
_IOV_MAX: Final = 1024  # writev's limit on buffers per call (POSIX requires at least 16)


class Pickler:
    """Pickles as `ForkingPickler.dumps` does, with one pickler reused; for one thread at a time.

    `ForkingPickler.dumps` makes a pickler per call, which copies the table of
    reducers each time: half of its 8 microseconds per small task here. This
    pickler looks them up in the live tables instead, so that reducers
    registered later (multiprocessing registers some on import) count too.
    """

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._pickler = pickle.Pickler(self._buffer, pickle.HIGHEST_PROTOCOL)
        extra: Any = getattr(ForkingPickler, "_extra_reducers", {})
        table: Any = copyreg.dispatch_table
        self._pickler.dispatch_table = collections.ChainMap(extra, table)

    def dumps(self, value: Any) -> bytes:
        """Raises whatever pickling `value` raises; the pickler stays usable."""
        self._buffer.seek(0)
        self._buffer.truncate()
        try:
            self._pickler.dump(value)
        finally:
            # The memo refers to what was pickled: cleared after, not before,
            # so that the pickler keeps nothing of the last task alive (SHUT-8).
            self._pickler.clear_memo()
        return self._buffer.getvalue()


def pack_task(job_id: int, position: int, call: Call, pickler: Pickler) -> bytes:
    """Raises whatever pickling the call raises (e.g. a lambda): ERR-3."""
    return _TASK.pack(job_id, position) + pickler.dumps(tuple(call))


def task_frame(number: int, packed: bytes) -> list[bytes]:
    """The buffers of one task's frame, for `write_frames`: no copy of the prepared task.

    The number is not written into the prepared bytes: after a take-back the
    same prepared task may go to a second worker under another number.
    """
    return [_LENGTH.pack(_NUMBER.size + len(packed)), _NUMBER.pack(number), packed]


def frame(payload: bytes) -> list[bytes]:
    return [_LENGTH.pack(len(payload)), payload]


def write_frames(fd: int, buffers: Sequence[bytes | memoryview]) -> None:
    """Write the buffers, in order, with as few system calls as the pipe allows."""
    pending = list(buffers)
    while pending:
        written = os.writev(fd, pending[:_IOV_MAX])
        # A pipe write can stop part way (a signal; a message bigger than the
        # pipe): drop what went out and write the rest.
        while pending and written >= len(pending[0]):
            written -= len(pending.pop(0))
        if written:
            pending[0] = memoryview(pending[0])[written:]


class FrameReader:
    """Splits what is read from a pipe into frames; keeps a frame that has not all arrived."""

    def __init__(self) -> None:
        self._partial = bytearray()

    @property
    def missing(self) -> int:
        """At least how many more bytes the frame that has begun needs (0 if none has)."""
        partial = self._partial
        if len(partial) < _LENGTH.size:
            return _LENGTH.size - len(partial) if partial else 0
        (length,) = _LENGTH.unpack_from(partial)
        return _LENGTH.size + int(length) - len(partial)

    def feed(self, data: bytes) -> list[bytes | memoryview]:
        """The frames that `data` completes, in order."""
        if self._partial:
            self._partial += data
            if self.missing > 0:
                return []  # a big frame still arriving: no copy until it is whole
            data = bytes(self._partial)
            self._partial.clear()
        frames: list[bytes | memoryview] = []
        view = memoryview(data)  # frames are slices of `data`, which nothing changes: no copy
        start, end = 0, len(data)
        while end - start >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(data, start)
            stop = start + _LENGTH.size + length
            if stop > end:
                break
            frames.append(view[start + _LENGTH.size : stop])
            start = stop
        self._partial += view[start:]
        return frames


def unpack_task(data: bytes | memoryview) -> tuple[int, int, int, memoryview]:
    """The number, the job id, the position, and the pickled call, still to be opened."""
    (number,) = _NUMBER.unpack_from(data)
    job_id, position = _TASK.unpack_from(data, _NUMBER.size)
    return number, job_id, position, memoryview(data)[_NUMBER.size + _TASK.size :]


def open_call(pickled: bytes | memoryview) -> CallTuple:
    call: CallTuple = ForkingPickler.loads(pickled)
    return call


def pack_outcome(
    job_id: int, position: int, success: bool, payload: bytes, remote_traceback: str | None
) -> bytes:
    """`payload` is the value or exception, pickled already (see worker.ProcessPort.reply)."""
    text = b"" if remote_traceback is None else remote_traceback.encode()
    return _OUTCOME.pack(job_id, position, success, len(text)) + text + payload


def unpack_outcome(data: bytes | memoryview) -> Outcome:
    """The outcome, with its payload still pickled, so that decoding can fail on its own."""
    job_id, position, success, text_length = _OUTCOME.unpack_from(data)
    start = _OUTCOME.size + text_length
    text = bytes(data[_OUTCOME.size : start]).decode() if text_length else None
    return Outcome(job_id, position, success, memoryview(data)[start:], text)


def loads(payload: bytes | memoryview) -> Any:
    return ForkingPickler.loads(payload)
