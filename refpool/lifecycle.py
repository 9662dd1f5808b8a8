"""The pool lifecycle: states, events and the one table that connects them.

Theory of operation
-------------------
A pool is born in INIT while its first workers start, and moves to RUN when
they have. From RUN the caller either closes it (CLOSE: no new work, the work
already submitted finishes) or terminates it (TERMINATE: work in progress is
abandoned, pending jobs fail). Both end states are final.

The transition table below is the whole truth about which method may be called
in which state. A pair that is absent is illegal: `Lifecycle.fire` raises
`PoolStateError` and leaves the state as it was. Legal no-ops are written as
self-loops, so that "close() twice is harmless" is visible in the table rather
than hidden in an `if`. Nothing outside this module assigns a pool's state.
"""

from __future__ import annotations

import enum
import threading
from typing import Final

__all__ = [
    "END_STATES",
    "TRANSITIONS",
    "Lifecycle",
    "PoolEvent",
    "PoolState",
    "PoolStateError",
    "legal_events",
    "next_state",
]


class PoolState(enum.Enum):
    INIT = "INIT"
    RUN = "RUN"
    CLOSE = "CLOSE"
    TERMINATE = "TERMINATE"

    def __str__(self) -> str:
        # CPython's pool states are plain strings; keep what users see in reprs.
        return self.value

    # Members are singletons, so the identity hash is right, and it is computed
    # in C: Enum's own __hash__ is a Python function, paid on every table
    # lookup, that is on every submit.
    __hash__ = object.__hash__


class PoolEvent(enum.Enum):
    STARTED = "started"  # the constructor has started the first workers
    SUBMIT = "submit"  # apply_async, map_async, imap, ... and entering `with`
    CLOSE = "close"
    TERMINATE = "terminate"
    JOIN = "join"

    __hash__ = object.__hash__  # as PoolState's


S, E = PoolState, PoolEvent

TRANSITIONS: Final[dict[tuple[PoolState, PoolEvent], PoolState]] = {
    (S.INIT, E.STARTED): S.RUN,
    (S.INIT, E.TERMINATE): S.TERMINATE,  # the constructor failed half-way
    (S.RUN, E.SUBMIT): S.RUN,
    (S.RUN, E.CLOSE): S.CLOSE,
    (S.RUN, E.TERMINATE): S.TERMINATE,
    (S.CLOSE, E.CLOSE): S.CLOSE,
    (S.CLOSE, E.TERMINATE): S.TERMINATE,
    (S.CLOSE, E.JOIN): S.CLOSE,
    (S.TERMINATE, E.CLOSE): S.TERMINATE,
    (S.TERMINATE, E.TERMINATE): S.TERMINATE,
    (S.TERMINATE, E.JOIN): S.TERMINATE,
}

# The message of an illegal event is the stdlib's, so that code written against
# multiprocessing.pool that compares messages keeps working.
_ILLEGAL_MESSAGES: Final[dict[PoolEvent, str]] = {
    E.SUBMIT: "Pool not running",
    E.JOIN: "Pool is still running",
    E.STARTED: "Pool already started",
    E.CLOSE: "Pool not started",
}

# The final states: once here, the pool never runs again (LIFE-2).
END_STATES: Final[frozenset[PoolState]] = frozenset({S.CLOSE, S.TERMINATE})

del S, E


class PoolStateError(ValueError):
    """An event that the pool's current state does not allow.

    A `ValueError`, as in the stdlib. `str()` is the stdlib's message; the state
    and the event are attributes and are named in a note.
    """

    def __init__(self, state: PoolState, event: PoolEvent) -> None:
        super().__init__(_ILLEGAL_MESSAGES.get(event, f"Pool cannot {event.value} in state {state}"))
        self.state = state
        self.event = event
        self.add_note(f"refpool: event {event.name} is not allowed in state {state.name}")


# The contracts below are checked by CrossHair (tests/contracts/test_crosshair.py).
# next_state returns only for a pair in the table, and returns the table's state
# (LIFE-2); any other pair raises PoolStateError (LIFE-3). CLOSE and TERMINATE
# are final: nothing leads back to INIT or RUN, and TERMINATE leads only to
# itself (LIFE-4: close() after terminate() does nothing).
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


# LIFE-4: terminate() may be called in every state, so TERMINATE is among the
# legal events of every state and, with next_state's contract, reachable in one
# step from each. LIFE-2: what this returns is read from TRANSITIONS alone.
def legal_events(state: PoolState) -> frozenset[PoolEvent]:
    """The events that `state` allows, read from TRANSITIONS (for docs and models).

    post: PoolEvent.TERMINATE in __return__
    post: all((state, event) in TRANSITIONS for event in __return__)
    post: all(event in __return__ for (s, event) in TRANSITIONS if s == state)
    post: state not in END_STATES or all(TRANSITIONS[(state, e)] in END_STATES for e in __return__)
    """
    return frozenset(event for (s, event) in TRANSITIONS if s == state)


class Lifecycle:
    """Holds one pool's state and applies events to it, atomically."""

    def __init__(self) -> None:
        self._state = PoolState.INIT
        # Public so that callers can make "check the state and enqueue" atomic:
        # a submit racing with close() must either be refused or be handed out.
        self.lock = threading.RLock()

    @property
    def state(self) -> PoolState:
        return self._state

    def fire(self, event: PoolEvent) -> PoolState:
        """Apply `event`; returns the state before it."""
        with self.lock:
            before = self._state
            self._state = next_state(before, event)
            return before
