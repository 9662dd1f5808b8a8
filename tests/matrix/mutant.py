"""A seeded mutant of refpool: one exact text replacement in one source file.

A mutant is data, not a monkeypatch, so that it acts in every process the
checks start (an oracle check's child, a spawned worker) and so that a reader
sees the bug as a diff. `find` must occur exactly once in `file`: a mutant
whose text the code no longer contains is stale, and tests/test_matrix.py
says so, rather than silently testing the unchanged code.
"""

from __future__ import annotations

import hashlib
import pathlib
import subprocess
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parents[2]
# What a check needs of the repository: the package, its tests and models, the
# spec the tests read, and the configuration pytest reads.
TREE = ("refpool", "tests", "models", "spec", "pyproject.toml")


@dataclass(frozen=True)
class Mutant:
    name: str
    clauses: tuple[str, ...]  # the spec clauses the mutant breaks
    file: str  # relative to the repository's top folder
    find: str
    replace: str
    why: str  # one sentence: what goes wrong
    tests: tuple[str, ...] = ()  # pytest files or node IDs expected to catch it
    oracle: tuple[str, ...] = ()  # clauses whose oracle check should catch it
    target: str = "refpool"  # the oracle target: refpool or refpool-threads
    model_bugs: tuple[str, ...] = ()  # the same bug seeded in the models: explorer and SPIN names

    def fingerprint(self) -> str:
        """Changes whenever the mutant or what it is checked by changes."""
        text = repr(
            (self.file, self.find, self.replace, self.tests, self.oracle, self.target, self.model_bugs)
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def occurrences(self, root: pathlib.Path = ROOT) -> int:
        return (root / self.file).read_text().count(self.find)

    def apply(self, root: pathlib.Path) -> None:
        """Write the mutant into the copy of the repository at `root`."""
        path = root / self.file
        text = path.read_text()
        count = text.count(self.find)
        if count != 1:
            raise ValueError(
                f"mutant {self.name}: {self.find!r} occurs {count} times in {self.file}, not once"
            )
        path.write_text(text.replace(self.find, self.replace))


def copy_tree(destination: pathlib.Path) -> None:
    """The committed repository (HEAD), as the checks need it.

    HEAD, not the working tree: the matrix is a record of the code as committed,
    and a file someone is editing must not decide a mutant's fate."""
    archive = subprocess.run(["git", "archive", "HEAD", *TREE], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(destination)], input=archive.stdout, check=True)
