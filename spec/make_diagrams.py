"""Writes spec/diagrams/ and spec/diagrams.md: the lifecycle and the components, from the code.

The lifecycle is drawn from refpool.lifecycle.TRANSITIONS, the components from
the facts in refpool/architecture.py (checked against the code by
tests/test_diagrams.py); the text of each is rendered by refpool/diagrams.py. The
SVGs are drawn by Graphviz's `dot` (apt-get install graphviz), without its
version comment, so that the files change only when a diagram does. Run it after
changing either source, and commit what it writes: tests/test_diagrams.py fails
while the committed files and the code disagree.
"""

from __future__ import annotations

import pathlib
import sys

from refpool import diagrams

SPEC = pathlib.Path(__file__).parent
OUT = SPEC / "diagrams"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    written = []
    for name, dot_text in (
        ("lifecycle", diagrams.lifecycle_dot()),
        ("components", diagrams.components_dot()),
    ):
        dot_file = OUT / f"{name}.dot"
        svg_file = OUT / f"{name}.svg"
        dot_file.write_text(dot_text)
        svg_file.write_text(diagrams.svg(dot_text))
        written += [dot_file, svg_file]
    page = SPEC / "diagrams.md"
    page.write_text(diagrams.page())
    written.append(page)
    for path in written:
        print(f"wrote {path.relative_to(SPEC.parent)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
