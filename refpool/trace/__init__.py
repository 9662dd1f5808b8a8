"""`refpool trace`: run a small real pool and draw what each of its parts did, one lane per part.

A scenario (scenarios.py) runs a process pool with an observer: the collector
(record.py) stamps each observation (refpool/observer.py) with the time and
the thread that reported it, and the caller's own steps beside them. lanes.py
says on which lane, or between which lanes, each is drawn. Three renderers
draw the same trace: text.py (a timeline), mermaid.py (a sequenceDiagram) and
html.py (one self-contained page with an SVG). command.py is the subcommand.

Nothing is imported here: worker processes import tasks.py, and need no more.
"""
