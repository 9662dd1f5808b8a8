"""Functions that tests/test_bad_input.py sends to pools: module level, so spawn workers can import them."""

from __future__ import annotations

from typing import NoReturn

MEGABYTE = 2**20


def big_bytes(size: int) -> bytes:
    return bytes(size)


def raise_system_exit(code: int = 3) -> NoReturn:
    raise SystemExit(code)


def raise_keyboard_interrupt(_: object = None) -> NoReturn:
    raise KeyboardInterrupt


def is_a_string(value: object) -> bool:
    return isinstance(value, str)
