"""How tasks and outcomes cross between processes: a fixed header, then one pickle.

The header says whose task or outcome it is (job id and position), so that a
call the worker cannot unpickle fails only its own job (ERR-3's twin on the
worker's side) and a result the parent cannot unpickle fails only its own job
(ERR-2; CPython hangs: gh-79492). Only the user's objects are pickled, once
each way: a pickled envelope around a pickled payload would cost a second
pickling per task, on both sides, and per-task cost is what decides whether
a pool keeps up with `imap` over small items (benchmarks/README.md).

Task:     job id, position (8 bytes each), then the pickled `Call`.
Outcome:  job id, position, success (1 byte), traceback length (4 bytes),
          the traceback text (UTF-8, a process worker's), then the pickled
          value or exception.
Shutdown: an empty message.
"""

from __future__ import annotations

import struct
from multiprocessing.reduction import ForkingPickler
from typing import Any, Final

from .messages import Call, Outcome

_TASK: Final = struct.Struct("!qq")
_OUTCOME: Final = struct.Struct("!qq?I")
SHUTDOWN_WIRE: Final = b""


def pack_task(job_id: int, position: int, call: Call) -> bytes:
    """Raises whatever pickling the call raises (e.g. a lambda): ERR-3."""
    return _TASK.pack(job_id, position) + ForkingPickler.dumps(call)


def unpack_task(data: bytes) -> tuple[int, int, memoryview]:
    """The job id, the position, and the pickled call, still to be opened."""
    job_id, position = _TASK.unpack_from(data)
    return job_id, position, memoryview(data)[_TASK.size :]


def open_call(pickled: bytes | memoryview) -> Call:
    call: Call = ForkingPickler.loads(pickled)
    return call


def pack_outcome(
    job_id: int, position: int, success: bool, payload: bytes, remote_traceback: str | None
) -> bytes:
    """`payload` is the value or exception, pickled already (see worker.ProcessPort.reply)."""
    text = b"" if remote_traceback is None else remote_traceback.encode()
    return _OUTCOME.pack(job_id, position, success, len(text)) + text + payload


def unpack_outcome(data: bytes) -> Outcome:
    """The outcome, with its payload still pickled, so that decoding can fail on its own."""
    job_id, position, success, text_length = _OUTCOME.unpack_from(data)
    start = _OUTCOME.size + text_length
    text = data[_OUTCOME.size : start].decode() if text_length else None
    return Outcome(job_id, position, success, memoryview(data)[start:], text)


def dumps(value: Any) -> bytes:
    return bytes(ForkingPickler.dumps(value))


def loads(payload: bytes | memoryview) -> Any:
    return ForkingPickler.loads(payload)
