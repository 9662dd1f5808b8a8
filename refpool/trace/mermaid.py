"""The trace as a Mermaid sequenceDiagram: one participant per lane, one line per event."""

from __future__ import annotations

import re

from .record import Trace, TraceEvent


def participant(lane: str) -> str:
    """A Mermaid identifier for a lane: `task handler` -> `task_handler`."""
    return re.sub(r"\W", "_", lane)


# Mermaid reads `;` as the end of a statement and `#...;` as an entity, and
# some renderers treat `<`, `>` and `&` as HTML: each goes as Mermaid's own
# numeric entity. A line break would end the statement.
_ENTITIES = {"#": "#35;", ";": "#59;", "<": "#60;", ">": "#62;", "&": "#38;", "\n": " ", "\r": " "}


def escape(text: str) -> str:
    return "".join(_ENTITIES.get(char, char) for char in text)


def event_line(event: TraceEvent) -> str:
    text = escape(f"{event.ms:.3f} ms {event.summary}")
    if event.target is None:
        return f"    Note over {participant(event.lane)}: {text}"
    return f"    {participant(event.lane)}->>{participant(event.target)}: {text}"


def render(trace: Trace) -> str:
    lines = ["sequenceDiagram"]
    lines.append(f"    %% {trace.title}")
    lines += [f"    participant {participant(lane)} as {escape(lane)}" for lane in trace.lanes]
    lines += [event_line(event) for event in trace.events]
    return "\n".join(lines) + "\n"
