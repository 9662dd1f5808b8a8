"""The trace as one self-contained HTML page: an inline SVG, one band per lane, time left to right.

No network, no file beside it, no build step: the page holds its style, its
drawing and a few lines of script that show an event's details on hover
(each mark also has an SVG <title>). Every string from the trace is escaped.

Time runs left to right, but where events crowd (a worker's outcomes a few
microseconds apart) each is pushed right to keep a mark's width between
them: the axis labels the times of the events under them.
"""

from __future__ import annotations

import html
from typing import Final

from .lanes import TIMEKEEPER, is_worker
from .record import Trace, TraceEvent

LABEL_WIDTH: Final = 150  # px: lane names on the left
LANE_HEIGHT: Final = 46
TOP: Final = 12
AXIS_HEIGHT: Final = 44
SPAN: Final = 900  # px for the whole run, where events do not crowd
GAP: Final = 18  # px: the least distance between two events
RIGHT: Final = 60
MARK_RADIUS: Final = 6

# One colour per kind of event (the caller's steps, the pool's observations).
COLOURS: Final = {
    "CallerStep": "#555555",
    "StateChanged": "#6a3d9a",
    "WorkerStarted": "#1f78b4",
    "TaskHandedOut": "#33a02c",
    "TaskTakenBack": "#b2df8a",
    "OutcomeDelivered": "#ff7f00",
    "WorkerReaped": "#e31a1c",
    "JobCancelled": "#fb9a99",
    "TaskTimedOut": "#b15928",
    "ShutdownBegun": "#a6cee3",
    "SentinelSent": "#000000",
}


def colour(kind: str) -> str:
    return COLOURS.get(kind, "#999999")


def escape(text: str) -> str:
    """For text and attribute values alike; a line break stays one inside an attribute."""
    return html.escape(text, quote=True).replace("\n", "&#10;")


def positions(events: tuple[TraceEvent, ...]) -> list[float]:
    """Each event's x: its time on a scale that fits the run into SPAN, pushed right past GAP."""
    end = max((event.ms for event in events), default=0.0) or 1.0
    xs: list[float] = []
    for event in events:
        x = LABEL_WIDTH + GAP + event.ms * SPAN / end
        xs.append(max(x, xs[-1] + GAP) if xs else x)
    return xs


def lane_band(index: int, lane: str, width: float) -> str:
    y = TOP + index * LANE_HEIGHT
    middle = y + LANE_HEIGHT / 2
    fill = "#eef4fb" if is_worker(lane) else ("#f6f6f6" if index % 2 else "#ffffff")
    return (
        f'<g class="lane" data-lane="{escape(lane)}">'
        f'<rect class="band" x="0" y="{y}" width="{width:.1f}" height="{LANE_HEIGHT}" fill="{fill}"/>'
        f'<line x1="{LABEL_WIDTH}" y1="{middle}" x2="{width:.1f}" y2="{middle}" stroke="#cccccc"/>'
        f'<text x="10" y="{middle + 5}">{escape(lane)}</text></g>'
    )


def event_mark(index: int, event: TraceEvent, x: float, middles: dict[str, float]) -> str:
    """One event: a mark on its lane, and for a message an arrow to the lane it goes to."""
    fill = colour(event.kind)
    y = middles[event.lane]
    arrow = ""
    if event.target is not None:
        end = middles[event.target]
        # Stop short of the target's line, so the arrowhead sits on it, not past it.
        end += -4 if end > y else 4
        arrow = (
            f'<line class="message" x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{end}" stroke="{fill}" '
            f'stroke-width="1.5" marker-end="url(#arrowhead)"/>'
        )
    target = "" if event.target is None else f' data-target="{escape(event.target)}"'
    return (
        f'<g class="event" tabindex="0" data-index="{index}" data-kind="{escape(event.kind)}" '
        f'data-lane="{escape(event.lane)}"{target} data-details="{escape(event.details)}">'
        f"<title>{escape(event.details)}</title>{arrow}"
        f'<circle class="mark" cx="{x:.1f}" cy="{y}" r="{MARK_RADIUS}" fill="{fill}"/></g>'
    )


def axis(events: tuple[TraceEvent, ...], xs: list[float], bottom: float) -> str:
    """Ticks under the events they name, at least 80 px apart."""
    parts = [
        f'<line x1="{LABEL_WIDTH}" y1="{bottom}" x2="{xs[-1] if xs else LABEL_WIDTH}" '
        f'y2="{bottom}" stroke="#333333"/>'
    ]
    last = -1e9
    for event, x in zip(events, xs, strict=True):
        if x - last < 80:
            continue
        last = x
        parts.append(
            f'<line class="tick" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom + 5}" '
            f'stroke="#dddddd" stroke-dasharray="2,3"/>'
            f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle" font-size="11">'
            f"{event.ms:.1f} ms</text>"
        )
    parts.append(
        f'<text x="{LABEL_WIDTH}" y="{bottom + 36}" font-size="11" fill="#555555">time since the pool '
        "was created (ms), stretched where events crowd</text>"
    )
    return f'<g class="axis">{"".join(parts)}</g>'


def svg(trace: Trace) -> str:
    lanes = trace.lanes
    xs = positions(trace.events)
    width = (xs[-1] if xs else LABEL_WIDTH) + RIGHT
    bottom = TOP + len(lanes) * LANE_HEIGHT
    height = bottom + AXIS_HEIGHT
    middles = {lane: TOP + i * LANE_HEIGHT + LANE_HEIGHT / 2 for i, lane in enumerate(lanes)}
    bands = "".join(lane_band(i, lane, width) for i, lane in enumerate(lanes))
    marks = "".join(
        event_mark(i, event, x, middles) for i, (event, x) in enumerate(zip(trace.events, xs, strict=True))
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="trace" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="refpool trace of the {escape(trace.scenario)} scenario">'
        '<defs><marker id="arrowhead" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z" fill="#333333"/>'
        "</marker></defs>"
        f'<g class="lanes">{bands}</g>{axis(trace.events, xs, bottom)}<g class="events">{marks}</g></svg>'
    )


def legend(trace: Trace) -> str:
    kinds = dict.fromkeys(event.kind for event in trace.events)
    items = "".join(
        f'<li><span class="swatch" style="background:{colour(kind)}"></span>{escape(kind)}</li>'
        for kind in kinds
    )
    return f'<ul class="legend">{items}</ul>'


STYLE: Final = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 18px; margin: 0 0 4px; }
p { margin: 0 0 8px; max-width: 70em; }
.scroll { overflow-x: auto; border: 1px solid #ccc; }
svg text { font: 13px system-ui, sans-serif; }
.event { cursor: pointer; }
.event:hover .mark, .event.current .mark, .event:focus .mark { stroke: #000; stroke-width: 3; }
#details { background: #fffbe6; border: 1px solid #e0c060; padding: 8px; min-height: 5.6em;
           white-space: pre-wrap; margin: 8px 0; }
.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 4px 16px; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 50%; margin-right: 5px; }
"""

# Fills the details box from the event under the pointer (or focused from the keyboard).
SCRIPT: Final = """
(function () {
  var box = document.getElementById("details");
  var current = null;
  document.querySelectorAll("#trace g.event").forEach(function (event) {
    function show() {
      if (current !== null) { current.classList.remove("current"); }
      current = event;
      event.classList.add("current");
      box.textContent = event.getAttribute("data-details");
    }
    event.addEventListener("mouseover", show);
    event.addEventListener("focus", show);
  });
})();
"""


def render(trace: Trace) -> str:
    title = trace.title
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
<p>One band per part of the pool: the caller, the task handler, each worker, the result handler,
the worker handler{", the timekeeper" if TIMEKEEPER in trace.lanes else ""}. A dot is an event on
the lane of the part that did it; an arrow, a message from one part to another. Hover over a dot for
its details. {len(trace.events)} events.</p>
<pre id="details">Hover over an event to see its details.</pre>
<div class="scroll">{svg(trace)}</div>
{legend(trace)}
<script>{SCRIPT}</script>
</body>
</html>
"""
