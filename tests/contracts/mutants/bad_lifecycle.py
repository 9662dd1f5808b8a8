"""Seeded bug: a transition table in which close() undoes terminate() (LIFE-2, LIFE-4).

The same table as refpool.lifecycle.TRANSITIONS but for one entry,
(TERMINATE, CLOSE) -> CLOSE instead of TERMINATE, with copies of next_state and
legal_events, contracts and all. CrossHair must find a counterexample
(tests/contracts/test_crosshair.py).
"""

from __future__ import annotations

from typing import Final

# END_STATES is read by the contracts below, which ruff does not see.
from refpool.lifecycle import END_STATES, PoolEvent, PoolState, PoolStateError  # noqa: F401

S, E = PoolState, PoolEvent

TRANSITIONS: Final[dict[tuple[PoolState, PoolEvent], PoolState]] = {
    (S.INIT, E.STARTED): S.RUN,
    (S.INIT, E.TERMINATE): S.TERMINATE,
    (S.RUN, E.SUBMIT): S.RUN,
    (S.RUN, E.CLOSE): S.CLOSE,
    (S.RUN, E.TERMINATE): S.TERMINATE,
    (S.CLOSE, E.CLOSE): S.CLOSE,
    (S.CLOSE, E.TERMINATE): S.TERMINATE,
    (S.CLOSE, E.JOIN): S.CLOSE,
    (S.TERMINATE, E.CLOSE): S.CLOSE,  # the bug: should stay TERMINATE
    (S.TERMINATE, E.TERMINATE): S.TERMINATE,
    (S.TERMINATE, E.JOIN): S.TERMINATE,
}

del S, E


def next_state(state: PoolState, event: PoolEvent) -> PoolState:
    """The state after `event` in `state`; raises PoolStateError if illegal.

    raises: PoolStateError
    post: (state, event) in TRANSITIONS and __return__ == TRANSITIONS[(state, event)]
    post: state not in END_STATES or __return__ in END_STATES
    post: state is not PoolState.TERMINATE or __return__ is PoolState.TERMINATE
    post: event is not PoolEvent.TERMINATE or __return__ is PoolState.TERMINATE
    """
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise PoolStateError(state, event) from None


def legal_events(state: PoolState) -> frozenset[PoolEvent]:
    """The events that `state` allows, read from TRANSITIONS (for docs and models).

    post: PoolEvent.TERMINATE in __return__
    post: all((state, event) in TRANSITIONS for event in __return__)
    post: all(event in __return__ for (s, event) in TRANSITIONS if s == state)
    post: state not in END_STATES or all(TRANSITIONS[(state, e)] in END_STATES for e in __return__)
    """
    return frozenset(event for (s, event) in TRANSITIONS if s == state)
