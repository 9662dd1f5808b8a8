"""The lifecycle table, pure: every (state, event) pair, legal or not."""

from __future__ import annotations

import itertools

import pytest

from refpool.lifecycle import TRANSITIONS, Lifecycle, PoolEvent, PoolState, PoolStateError, next_state

S, E = PoolState, PoolEvent
ALL_PAIRS = list(itertools.product(PoolState, PoolEvent))


def test_states_print_as_the_stdlib_words() -> None:
    """Checks LIFE-1."""
    assert [str(s) for s in PoolState] == ["INIT", "RUN", "CLOSE", "TERMINATE"]


def test_the_table_says_what_the_stdlib_pool_allows() -> None:
    """Checks LIFE-2, LIFE-4."""
    assert next_state(S.INIT, E.STARTED) is S.RUN
    assert next_state(S.RUN, E.SUBMIT) is S.RUN
    assert next_state(S.RUN, E.CLOSE) is S.CLOSE
    assert next_state(S.CLOSE, E.CLOSE) is S.CLOSE  # close() twice is a no-op
    assert next_state(S.TERMINATE, E.CLOSE) is S.TERMINATE  # close() after terminate() too
    for state in PoolState:
        assert next_state(state, E.TERMINATE) is S.TERMINATE  # terminate() works in every state
    assert next_state(S.CLOSE, E.JOIN) is S.CLOSE
    assert next_state(S.TERMINATE, E.JOIN) is S.TERMINATE


def test_end_states_are_final() -> None:
    """Checks LIFE-2."""
    for (state, _event), after in TRANSITIONS.items():
        if state in (S.CLOSE, S.TERMINATE):
            assert after in (state, S.TERMINATE)


@pytest.mark.parametrize(("state", "event"), [p for p in ALL_PAIRS if p not in TRANSITIONS])
def test_an_illegal_event_raises_and_leaves_the_state(state: PoolState, event: PoolEvent) -> None:
    """Checks LIFE-3."""
    lifecycle = Lifecycle()
    lifecycle._state = state  # only tests reach in: no public way to every state
    with pytest.raises(PoolStateError) as caught:
        lifecycle.fire(event)
    assert lifecycle.state is state
    assert isinstance(caught.value, ValueError)
    assert (caught.value.state, caught.value.event) == (state, event)
    assert f"event {event.name} is not allowed in state {state.name}" in caught.value.__notes__[0]


@pytest.mark.parametrize(
    ("state", "event", "message"),
    [
        (S.CLOSE, E.SUBMIT, "Pool not running"),
        (S.TERMINATE, E.SUBMIT, "Pool not running"),
        (S.INIT, E.SUBMIT, "Pool not running"),
        (S.RUN, E.JOIN, "Pool is still running"),
    ],
)
def test_illegal_events_keep_the_stdlib_messages(state: PoolState, event: PoolEvent, message: str) -> None:
    """Checks LIFE-3."""
    with pytest.raises(ValueError) as caught:
        next_state(state, event)
    assert str(caught.value) == message


def test_fire_returns_the_state_before() -> None:
    lifecycle = Lifecycle()
    assert lifecycle.fire(E.STARTED) is S.INIT
    assert lifecycle.fire(E.CLOSE) is S.RUN
    assert lifecycle.fire(E.CLOSE) is S.CLOSE
    assert lifecycle.state is S.CLOSE


def test_nothing_outside_the_lifecycle_module_assigns_the_state() -> None:
    import pathlib

    import refpool

    package = pathlib.Path(refpool.__file__).parent
    offenders = [
        path.name
        for path in package.glob("*.py")
        if path.name != "lifecycle.py" and "._state =" in path.read_text()
    ]
    assert offenders == []
