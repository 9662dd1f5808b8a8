"""The caller's view of a pool, as an executable model: what each call must do.

The model lives in the installed package, `refpool/conform/model.py`, because
the conformance oracle (`refpool conform`) runs it beside any pool; the
stateful tests (tests/stateful/) import it from here. It knows nothing of
workers or threads: for a sequence of public calls it says which ones the
pool must refuse (LIFE-2, LIFE-3), what state it is in afterwards, and what
each accepted job must end with (API-1, API-2, API-4, JOB-1).
"""

from refpool.conform.model import (
    REFUSALS,
    TABLE,
    ApiModel,
    Expected,
    expect_apply,
    expect_imap,
    expect_map,
    sleep_for,
    square,
    square_or_fail,
    square_or_fail_pair,
    unpicklable_result,
)

__all__ = [
    "REFUSALS",
    "TABLE",
    "ApiModel",
    "Expected",
    "expect_apply",
    "expect_imap",
    "expect_map",
    "sleep_for",
    "square",
    "square_or_fail",
    "square_or_fail_pair",
    "unpicklable_result",
]
