"""What a rendered trace must show, per format: every lane, every event, in order (tests/test_trace*.py)."""

from __future__ import annotations

import re
import struct
import zlib
from html.parser import HTMLParser

from refpool.trace import mermaid
from refpool.trace.record import Trace

TEXT_EVENT = re.compile(r"^\s*\d+\.\d{3} ms  (?P<rest>.*)$")


def text_problems(output: str, trace: Trace) -> list[str]:
    problems = []
    lines = output.splitlines()
    if f"lanes: {', '.join(trace.lanes)}" not in lines:
        problems.append(f"text: the lanes line does not list {trace.lanes}")
    events = [m["rest"] for m in map(TEXT_EVENT.match, lines) if m]
    if len(events) != len(trace.events):
        problems.append(f"text: {len(events)} event lines for {len(trace.events)} events")
    for rest, event in zip(events, trace.events, strict=False):
        if not (rest.startswith(event.route) and rest.endswith(event.summary)):
            problems.append(f"text: {rest!r} is not {event.route}: {event.summary}")
            break
    return problems


MERMAID_PARTICIPANT = re.compile(r"^    participant (?P<id>\w+) as (?P<name>[^;#<>]+)$")
# Text with no `;`, `#`, `<` or `>` but in Mermaid's entities (`#59;`).
MERMAID_TEXT = r"(?P<text>(?:[^;#<>\n]|#\d+;)*)"
MERMAID_MESSAGE = re.compile(rf"^    (?P<source>\w+)->>(?P<target>\w+): {MERMAID_TEXT}$")
MERMAID_NOTE = re.compile(rf"^    Note over (?P<source>\w+): {MERMAID_TEXT}$")
MERMAID_COMMENT = re.compile(r"^    %%[^\n]*$")


def mermaid_problems(output: str, trace: Trace) -> list[str]:
    """A well-formed sequenceDiagram: participants declared once, before any use; one line per event."""
    lines = output.splitlines()
    if not lines or lines[0] != "sequenceDiagram":
        return ["mermaid: the first line is not sequenceDiagram"]
    problems = []
    declared: dict[str, str] = {}
    events = []
    for number, line in enumerate(lines[1:], start=2):
        if MERMAID_COMMENT.match(line):
            continue
        if m := MERMAID_PARTICIPANT.match(line):
            if events:
                problems.append(f"mermaid line {number}: a participant declared after the first event")
            if m["id"] in declared:
                problems.append(f"mermaid line {number}: {m['id']} declared twice")
            declared[m["id"]] = m["name"]
        elif m := MERMAID_MESSAGE.match(line) or MERMAID_NOTE.match(line):
            ends = [m["source"], *([m["target"]] if "target" in m.groupdict() else [])]
            undeclared = [end for end in ends if end not in declared]
            if undeclared:
                problems.append(f"mermaid line {number}: {undeclared} used before it is declared")
            events.append((tuple(ends), m["text"]))
        else:
            problems.append(f"mermaid line {number}: not a participant, a message or a note: {line!r}")
    if list(declared.values()) != [mermaid.escape(lane) for lane in trace.lanes]:
        problems.append(f"mermaid: participants {list(declared.values())}, lanes {trace.lanes}")
    if len(events) != len(trace.events):
        problems.append(f"mermaid: {len(events)} event lines for {len(trace.events)} events")
    for (ends, text), event in zip(events, trace.events, strict=False):
        expected = tuple(mermaid.participant(lane) for lane in event.lanes)
        if ends != expected or not text.endswith(mermaid.escape(event.summary)):
            problems.append(f"mermaid: {ends} {text!r} is not {event.route}: {event.summary}")
            break
    return problems


class SvgParts(HTMLParser):
    """The lanes and the events an HTML trace page draws, as its markup says."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lanes: list[str] = []
        self.events: list[dict[str, str | None]] = []
        self.marks = 0
        self.titles = 0
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        classes = (found.get("class") or "").split()
        if tag == "g" and "lane" in classes:
            self.lanes.append(found["data-lane"] or "")
        elif tag == "g" and "event" in classes:
            self.events.append(found)
        elif tag == "circle" and "mark" in classes:
            self.marks += 1
        elif tag == "title" and self.events:
            self.titles += 1
        elif tag == "script":
            self._in_script = True
            self.scripts.append(str(found.get("src")))

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"


def html_problems(output: str, trace: Trace) -> list[str]:
    page = SvgParts()
    page.feed(output)
    problems = []
    if page.lanes != list(trace.lanes):
        problems.append(f"html: lanes {page.lanes}, expected {list(trace.lanes)}")
    if not len(page.events) == page.marks == page.titles == len(trace.events):
        problems.append(
            f"html: {len(page.events)} events, {page.marks} marks, {page.titles} titles "
            f"for {len(trace.events)} events"
        )
    for drawn, event in zip(page.events, trace.events, strict=False):
        if (drawn.get("data-lane"), drawn.get("data-target"), drawn.get("data-details")) != (
            event.lane,
            event.target,
            event.details,
        ):
            problems.append(f"html: event {drawn.get('data-index')} is not {event.route}: {event.summary}")
            break
    if page.scripts != ["None"]:  # one inline script, nothing loaded
        problems.append(f"html: scripts {page.scripts}, expected one inline script")
    if re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", output):
        problems.append("html: the page refers to the network")
    return problems


PROBLEMS = {"text": text_problems, "mermaid": mermaid_problems, "html": html_problems}


def png_colours(png: bytes, enough: int = 16) -> int:
    """How many colours a PNG (8-bit RGB or RGBA, not interlaced) shows, counting up to `enough`."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat = 8, b""
    width = height = channels = 0
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind, data = png[offset + 4 : offset + 8], png[offset + 8 : offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", data)
            assert depth == 8 and colour_type in (2, 6) and interlace == 0, "an unexpected PNG layout"
            channels = 3 if colour_type == 2 else 4
        elif kind == b"IDAT":
            idat += data
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    colours: set[bytes] = set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):  # the five PNG filters, undone
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                corner = previous[i - channels] if i >= channels else 0
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        colours.update(bytes(line[i : i + channels]) for i in range(0, stride, channels))
        if len(colours) >= enough:
            return len(colours)
        previous = line
    return len(colours)


def flat_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A PNG of one colour: what a blank page's screenshot looks like."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
