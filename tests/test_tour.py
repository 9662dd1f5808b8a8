"""spec/tour.md stays true: every file, function and clause it names exists, and its excerpts are in the code.

The tour is read beside the code, so a renamed function or a moved line would
send a learner looking for something that is not there. Checked here:
- every relative link points at a file that exists;
- a link whose text is a name in backticks (`Roster.offer`) to a Python file names
  something that module defines;
- every other name in backticks that starts with a capital (`WorkerReaped`,
  `Roster.serve_all`) is defined by some module of refpool;
- every clause ID is a clause of spec/pool.md;
- every excerpt (a code block after `<!-- excerpt: PATH -->`) is in PATH, verbatim.
"""

from __future__ import annotations

import importlib
import pathlib
import re
from types import ModuleType

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOUR = ROOT / "spec" / "tour.md"

# Names the tour mentions that belong to the standard library, not to refpool.
OUTSIDE = {"Process.sentinel"}

LINK = re.compile(r"\[([^\]]+)\]\(([^)#\s]+)(?:#[^)]*)?\)")
BACKTICKED_NAME = re.compile(r"`([A-Z][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)`")
CLAUSE = re.compile(r"\b([A-Z]+-[0-9]+)\b")
EXCERPT = re.compile(r"<!-- excerpt: (\S+) -->\n```python\n(.*?)```", re.DOTALL)


def module_of(path: pathlib.Path) -> ModuleType:
    """The module of a .py file under the repository, imported by its dotted name."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return importlib.import_module(".".join(parts))


def resolves(module: ModuleType, dotted: str) -> bool:
    value: object = module
    for part in dotted.split("."):
        if not hasattr(value, part):
            return False
        value = getattr(value, part)
    return True


def refpool_modules() -> list[ModuleType]:
    return [module_of(path) for path in sorted((ROOT / "refpool").glob("*.py")) if path.name != "__main__.py"]


def clauses() -> set[str]:
    return set(re.findall(r"^- \*\*([A-Z]+-[0-9]+)\*\*", (ROOT / "spec" / "pool.md").read_text(), re.M))


def problems(text: str, base: pathlib.Path = TOUR.parent) -> list[str]:
    """Everything the tour names that does not exist, each as a sentence."""
    found: list[str] = []
    for label, target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # an absolute address, not the repository's
        path = (base / target).resolve()
        if not path.exists():
            found.append(f"the link [{label}]({target}) points at a missing file")
            continue
        name = label.strip("`") if label.startswith("`") and label.endswith("`") else None
        if name is not None and path.suffix == ".py" and not resolves(module_of(path), name):
            found.append(f"{target} defines no {name}")
    modules = refpool_modules()
    linked = {label.strip("`") for label, _ in LINK.findall(text)}
    for name in sorted(set(BACKTICKED_NAME.findall(text)) - linked - OUTSIDE):
        if not any(resolves(module, name) for module in modules):
            found.append(f"no module of refpool defines {name}")
    known = clauses()
    for clause in sorted(set(CLAUSE.findall(text))):
        if clause not in known:
            found.append(f"{clause} is not a clause of spec/pool.md")
    for target, excerpt in EXCERPT.findall(text):
        source = ROOT / target
        if not source.exists():
            found.append(f"an excerpt cites {target}, which does not exist")
        elif excerpt not in source.read_text():
            first = excerpt.strip().splitlines()[0]
            found.append(f"the excerpt beginning {first!r} is no longer in {target}")
    return found


def test_everything_the_tour_names_exists() -> None:
    text = TOUR.read_text()
    assert problems(text) == []


def test_the_tour_has_what_it_is_checked_for() -> None:
    """The checks above have something to check: links to code, names, clauses and excerpts."""
    text = TOUR.read_text()
    code_links = [t for label, t in LINK.findall(text) if t.endswith(".py") and label.startswith("`")]
    assert len(code_links) >= 20
    assert len(set(BACKTICKED_NAME.findall(text))) >= 20
    assert len(set(CLAUSE.findall(text))) >= 20
    assert len(EXCERPT.findall(text)) >= 6


# Built, so that tests/test_spec.py, which reads every clause ID cited in tests/, does not see it.
NO_CLAUSE = "-".join(("LOST", "99"))


@pytest.mark.parametrize(
    ("change", "reported"),
    [
        (("[`Roster.offer`]", "[`Roster.offers`]"), "../refpool/roster.py defines no Roster.offers"),
        (("`WorkerReaped`", "`WorkerRemoved`"), "no module of refpool defines WorkerRemoved"),
        (("LOST-3). A worker", f"{NO_CLAUSE}). A worker"), f"{NO_CLAUSE} is not a clause of spec/pool.md"),
        (("lost = keys[0] if keys else None", "lost = keys[-1]"), "is no longer in refpool/roster.py"),
        (("(../refpool/claims.py)", "(../refpool/claim.py)"), "points at a missing file"),
    ],
)
def test_a_tour_that_names_what_is_not_there_is_reported(change: tuple[str, str], reported: str) -> None:
    """Seeded drift: each kind of stale reference is caught."""
    text = TOUR.read_text()
    old, new = change
    assert old in text
    found = problems(text.replace(old, new, 1))
    assert any(reported in problem for problem in found), found
