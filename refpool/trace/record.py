"""The collector: each observation and each step of the caller, with its time and its thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..observer import Observation
from .lanes import CALLER, THREAD_LANES, describe, order, place


@dataclass(frozen=True)
class TraceEvent:
    at_ns: int  # monotonic, since the collector started
    thread: str  # the name of the thread that reported it
    lane: str  # where it is drawn; for a message, the lane it comes from
    target: str | None  # for a message, the lane it goes to
    summary: str
    observation: Observation | None  # None for a step of the caller

    @property
    def kind(self) -> str:
        return "CallerStep" if self.observation is None else type(self.observation).__name__

    @property
    def ms(self) -> float:
        return self.at_ns / 1e6

    @property
    def lanes(self) -> tuple[str, ...]:
        return (self.lane,) if self.target is None else (self.lane, self.target)

    @property
    def route(self) -> str:
        return self.lane if self.target is None else f"{self.lane} -> {self.target}"

    @property
    def details(self) -> str:
        """Everything known about it, for the HTML page's details box."""
        record = "a step of the caller" if self.observation is None else repr(self.observation)
        return f"{self.ms:.3f} ms  {self.route}\n{self.summary}\n{record}\nthread: {self.thread}"


@dataclass(frozen=True)
class Trace:
    scenario: str
    workers: int
    events: tuple[TraceEvent, ...]

    @property
    def lanes(self) -> tuple[str, ...]:
        return order({lane for event in self.events for lane in event.lanes})

    @property
    def title(self) -> str:
        return f"refpool trace: scenario {self.scenario}, {self.workers} worker process(es)"


class Recorder:
    """The pool's observer, and the caller's notebook.

    The pool calls `observe` from its own threads, under the roster's lock:
    it only stamps and appends. The time is read under the recorder's own
    lock, so that the events are in the order of their times.
    """

    def __init__(self) -> None:
        self._start = time.monotonic_ns()
        self._caller = threading.get_ident()
        self._events: list[TraceEvent] = []
        self._changed = threading.Condition()

    def observe(self, observation: Observation) -> None:
        thread = threading.current_thread()
        reporter = CALLER if thread.ident == self._caller else THREAD_LANES.get(thread.name, thread.name)
        lane, target = place(observation, reporter)
        self._add(thread.name, lane, target, describe(observation), observation)

    def step(self, text: str) -> None:
        """Something the caller did, or saw: `close()`, `returned [0, 1, 4]`."""
        self._add(threading.current_thread().name, CALLER, None, text, None)

    def _add(
        self, thread: str, lane: str, target: str | None, summary: str, seen: Observation | None
    ) -> None:
        with self._changed:
            at = time.monotonic_ns() - self._start
            self._events.append(TraceEvent(at, thread, lane, target, summary, seen))
            self._changed.notify_all()

    def wait_until(
        self, what: str, happened: Callable[[Sequence[TraceEvent]], bool], timeout: float = 30.0
    ) -> None:
        """Block until the events so far satisfy `happened`: how a scenario synchronizes with the pool."""
        with self._changed:
            if not self._changed.wait_for(lambda: happened(self._events), timeout):
                raise TimeoutError(f"refpool trace: waited {timeout:g} s for {what}; it did not happen")

    def trace(self, scenario: str, workers: int) -> Trace:
        with self._changed:
            return Trace(scenario, workers, tuple(self._events))
