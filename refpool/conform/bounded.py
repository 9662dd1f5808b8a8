"""Calling into a target with a time limit: the call runs in a daemon thread, which may block forever."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class TimedOut(Exception):
    """The call had not returned when its time was up (its thread is left behind, blocked)."""


def call_within(call: Callable[[], T], timeout: float, name: str) -> T:
    """call()'s value, or its exception re-raised; TimedOut if it runs longer than `timeout` seconds."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as error:
            box["error"] = error

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimedOut(name)
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value
