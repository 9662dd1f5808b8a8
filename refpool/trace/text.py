"""The trace as a plain-text timeline: one line per event, with its time, its lane(s) and what happened."""

from __future__ import annotations

from .record import Trace, TraceEvent


def header(trace: Trace) -> list[str]:
    return [f"{trace.title}, {len(trace.events)} events", f"lanes: {', '.join(trace.lanes)}"]


def event_line(event: TraceEvent, width: int) -> str:
    """`    5.402 ms  task handler -> worker 1  hand out task (1, 0)`; a message shows both lanes."""
    return f"{event.ms:9.3f} ms  {event.route:<{width}}  {event.summary}"


def render(trace: Trace) -> str:
    width = max((len(event.route) for event in trace.events), default=0)
    lines = [*header(trace), ""]
    lines += [event_line(event, width) for event in trace.events]
    return "\n".join(lines) + "\n"
