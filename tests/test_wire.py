"""The bytes on a process worker's pipes (refpool/wire.py), pure."""

from __future__ import annotations

import pickle
import struct

import pytest

from refpool import wire
from refpool.messages import Call, Outcome


def test_a_task_keeps_its_job_and_position_beside_its_pickled_call() -> None:
    data = wire.pack_task(2**40, 7, Call(divmod, (7, 2), {"x": 1}))
    job_id, position, pickled = wire.unpack_task(data)
    assert (job_id, position) == (2**40, 7)
    assert wire.open_call(pickled) == Call(divmod, (7, 2), {"x": 1})


def test_a_call_that_cannot_be_pickled_raises_when_packed() -> None:
    """ERR-3: the task handler fails the job with this error."""
    with pytest.raises((AttributeError, pickle.PicklingError), match=r"pickle"):
        wire.pack_task(0, 0, Call(lambda: None, (), {}))


def test_the_shutdown_sentinel_is_no_task() -> None:
    with pytest.raises(struct.error):
        wire.unpack_task(wire.SHUTDOWN_WIRE)


@pytest.mark.parametrize("remote_traceback", [None, "Traceback: ünïcode\n  line"])
def test_an_outcome_keeps_its_header_traceback_and_payload(remote_traceback: str | None) -> None:
    payload = wire.dumps(ValueError("bad"))
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
