"""The diagrams in spec/ are what the code gives now, and refpool/architecture.py's facts hold.

Pure and fast (no pool runs): the committed .dot files, spec/diagrams.md and its
Mermaid blocks are compared with what refpool/diagrams.py renders now; each
committed .svg with Graphviz's drawing of its committed .dot; and every fact of
refpool/architecture.py is looked for in the code, by import and by reading the
source with `ast`. Each kind of check is shown once to catch a seeded bug.
Regenerate with `python spec/make_diagrams.py`.
"""

from __future__ import annotations

import ast
import functools
import importlib
import pathlib
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import pytest

from refpool import architecture, diagrams, lifecycle
from refpool.architecture import Component, Edge, Lock, Record, Thread, Via
from refpool.lifecycle import PoolEvent, PoolState

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "refpool"
FIX = "run `python spec/make_diagrams.py` and commit what it writes"


# --- the committed files against the renderers ------------------------------------
def read_committed(name: str) -> str:
    path = ROOT / name
    return path.read_text() if path.exists() else f"(missing: {name})"


def generated() -> dict[str, str]:
    """What spec/make_diagrams.py would write now, but the SVGs."""
    return {
        "spec/diagrams/lifecycle.dot": diagrams.lifecycle_dot(),
        "spec/diagrams/components.dot": diagrams.components_dot(),
        "spec/diagrams.md": diagrams.page(),
    }


def stale_files(read: Callable[[str], str] = read_committed) -> list[str]:
    return [name for name, text in generated().items() if read(name) != text]


def mermaid_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```mermaid\n(.*?)^```$", markdown, flags=re.MULTILINE | re.DOTALL)


def stale_mermaid(read: Callable[[str], str] = read_committed) -> list[str]:
    """The Mermaid blocks of spec/diagrams.md that differ from the renderers' (by diagram)."""
    committed = mermaid_blocks(read("spec/diagrams.md"))
    expected = {"lifecycle": diagrams.lifecycle_mermaid(), "components": diagrams.components_mermaid()}
    if len(committed) != len(expected):
        return [f"spec/diagrams.md has {len(committed)} mermaid blocks, not {len(expected)}"]
    return [name for name, block in zip(expected, committed, strict=True) if block != expected[name]]


def svg_mismatches(read: Callable[[str], str] = read_committed) -> list[str]:
    """The committed SVGs that are not Graphviz's drawing of their committed .dot."""
    wrong = []
    for name in ("lifecycle", "components"):
        drawn = diagrams.svg(read(f"spec/diagrams/{name}.dot"))
        if diagrams.normalized_svg(read(f"spec/diagrams/{name}.svg")) != drawn:
            wrong.append(f"spec/diagrams/{name}.svg")
    return wrong


def test_committed_dot_files_and_page_are_generated_from_the_code() -> None:
    assert stale_files() == [], FIX


def test_committed_mermaid_blocks_are_generated_from_the_code() -> None:
    assert stale_mermaid() == [], FIX


needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz's dot is not installed (apt-get install graphviz)"
)


@needs_dot
def test_committed_svgs_are_drawn_from_the_committed_dot_files() -> None:
    assert svg_mismatches() == [], FIX


def test_a_transition_added_to_the_table_makes_the_committed_lifecycle_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Seeded bug: close() no longer final, CLOSE --submit--> RUN.
    monkeypatch.setitem(lifecycle.TRANSITIONS, (PoolState.CLOSE, PoolEvent.SUBMIT), PoolState.RUN)
    assert stale_files() == ["spec/diagrams/lifecycle.dot", "spec/diagrams.md"]
    assert stale_mermaid() == ["lifecycle"]
    assert 'CLOSE -> RUN [label="submit"]' in diagrams.lifecycle_dot()


def test_a_state_no_longer_final_is_drawn_differently(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lifecycle, "END_STATES", frozenset({PoolState.TERMINATE}))
    assert "spec/diagrams/lifecycle.dot" in stale_files()
    assert stale_mermaid() == ["lifecycle"]


def test_an_edge_added_to_the_architecture_makes_the_committed_components_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = Edge("timekeeper", "job_cache", (), (Via("refpool.jobs:JobCache.deliver"),))
    monkeypatch.setattr(architecture, "EDGES", (*architecture.EDGES, extra))
    assert stale_files() == ["spec/diagrams/components.dot", "spec/diagrams.md"]
    assert stale_mermaid() == ["components"]


@needs_dot
def test_an_svg_not_redrawn_after_its_dot_changed_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(lifecycle.TRANSITIONS, (PoolState.CLOSE, PoolEvent.SUBMIT), PoolState.RUN)
    changed = diagrams.lifecycle_dot()

    def dot_written_svg_not(name: str) -> str:
        return changed if name == "spec/diagrams/lifecycle.dot" else read_committed(name)

    assert svg_mismatches(dot_written_svg_not) == ["spec/diagrams/lifecycle.svg"]


def test_only_graphvizs_version_comment_is_ignored_in_an_svg() -> None:
    svg = read_committed("spec/diagrams/lifecycle.svg")
    versioned = svg.replace(
        "<!-- Title:", "<!-- Generated by graphviz version 9.9.9 (0)\n -->\n<!-- Title:", 1
    )
    assert versioned != svg
    assert diagrams.normalized_svg(versioned) == svg
    assert diagrams.normalized_svg(svg.replace("INIT", "IN1T")) != svg


# --- the architecture's facts against the code --------------------------------------
def package_sources() -> dict[str, str]:
    """refpool's own modules (refpool/*.py), by module name; a new dict, the caller's to change."""
    sources = {}
    for path in sorted(PACKAGE.glob("*.py")):
        name = "refpool" if path.stem == "__init__" else f"refpool.{path.stem}"
        sources[name] = path.read_text()
    return sources


@functools.cache
def parse(source: str) -> ast.Module:
    """Parsed once per text: the checks below only read the trees."""
    return ast.parse(source)


LOCK_KINDS = ("Lock", "RLock", "Condition")


def _from_threading(tree: ast.AST) -> dict[str, str]:
    """The lock classes a module imports by name (`from threading import Lock as L`): {"L": "Lock"}."""
    imported = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "threading":
            imported.update({a.asname or a.name: a.name for a in node.names if a.name in LOCK_KINDS})
    return imported


def _lock_factory(node: ast.expr, imported: dict[str, str]) -> str | None:
    """The kind of lock that `threading.Lock` (or a Lock imported from threading) makes; RLock and
    Condition too; None for anything else."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "threading":
        return node.attr if node.attr in LOCK_KINDS else None
    if isinstance(node, ast.Name):
        return imported.get(node.id)
    return None


class LockMade(NamedTuple):
    kind: str
    line: int
    over: str | None  # a Condition's lock argument: its attribute name


class LockScan(ast.NodeVisitor):
    """Every lock a module makes, by (module, class, attribute); those it cannot name, by line."""

    def __init__(self, module: str, imported: dict[str, str]) -> None:
        self.module = module
        self.imported = imported
        self.scopes: list[tuple[str, str]] = []  # ("class", name) or ("def", name), innermost last
        self.named: dict[tuple[str, str, str], LockMade] = {}
        self.made: dict[int, ast.AST] = {}  # every lock made, by node id
        self.placed: set[int] = set()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.scopes.append(("class", node.name))
        self.generic_visit(node)
        self.scopes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.scopes.append(("def", node.name))
        self.generic_visit(node)
        self.scopes.pop()

    def visit_Call(self, node: ast.Call) -> None:
        if _lock_factory(node.func, self.imported) is not None:
            self.made[id(node)] = node
        for keyword in node.keywords:  # field(default_factory=threading.Lock)
            if keyword.arg == "default_factory" and _lock_factory(keyword.value, self.imported) is not None:
                self.made[id(keyword.value)] = keyword.value
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._place(target, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._place(node.target, node.value)
        self.generic_visit(node)

    def _place(self, target: ast.expr, value: ast.expr) -> None:
        if not isinstance(value, ast.Call):
            return
        kind, made = _lock_factory(value.func, self.imported), value
        if kind is None:
            factories = [k.value for k in value.keywords if k.arg == "default_factory"]
            kind = _lock_factory(factories[0], self.imported) if factories else None
            made = factories[0] if factories else value
        if kind is None:
            return
        classes = [name for scope, name in self.scopes if scope == "class"]
        if (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == "self"
            and classes
        ):
            owner, attribute = classes[-1], target.attr  # in a method: an instance's lock
        elif isinstance(target, ast.Name) and (not self.scopes or self.scopes[-1][0] == "class"):
            owner, attribute = (classes[-1] if classes else ""), target.id  # a class's, or the module's
        else:
            return  # a function's local lock: reported as one the table cannot name
        over = None
        if kind == "Condition" and value.args and isinstance(value.args[0], ast.Attribute):
            over = value.args[0].attr
        self.named[(self.module, owner, attribute)] = LockMade(kind, value.lineno, over)
        self.placed.add(id(made))


@functools.cache
def scan_module(module: str, source: str) -> tuple[dict[tuple[str, str, str], LockMade], tuple[str, ...]]:
    tree = parse(source)
    scan = LockScan(module, _from_threading(tree))
    scan.visit(tree)
    unnamed = tuple(
        f"{module}, line {getattr(node, 'lineno', 0)}: a lock not assigned to a name the table can list"
        for key, node in scan.made.items()
        if key not in scan.placed
    )
    return scan.named, unnamed


def scan_locks(sources: dict[str, str]) -> tuple[dict[tuple[str, str, str], LockMade], list[str]]:
    named: dict[tuple[str, str, str], LockMade] = {}
    unnamed: list[str] = []
    for module, source in sources.items():
        found, lost = scan_module(module, source)
        named.update(found)
        unnamed += lost
    return named, unnamed


def _names(tree: ast.AST) -> Iterator[str]:
    """Every name the code refers to: variables, and attributes (`x.name`)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield node.id
        elif isinstance(node, ast.Attribute):
            yield node.attr


def _called(tree: ast.AST) -> set[str]:
    """The names the code calls: `name(...)` and `x.name(...)`."""
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                called.add(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                called.add(node.func.attr)
    return called


def _defined(tree: ast.Module) -> set[str]:
    defined = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined.update(t.id for t in targets if isinstance(t, ast.Name))
    return defined


def _held_with(tree: ast.AST) -> set[str]:
    """The attributes the code holds in a `with`: `with self.cond:` gives "cond"."""
    held = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for item in node.items:
                if isinstance(item.context_expr, ast.Attribute):
                    held.add(item.context_expr.attr)
    return held


class ModuleRead(NamedTuple):
    names: frozenset[str]
    called: frozenset[str]
    defined: frozenset[str]
    held_with: frozenset[str]


@functools.cache
def read_module(source: str) -> ModuleRead:
    tree = parse(source)
    return ModuleRead(
        frozenset(_names(tree)),
        frozenset(_called(tree)),
        frozenset(_defined(tree)),
        frozenset(_held_with(tree)),
    )


def resolve(target: str) -> Any:
    """The object "module:a.b" names; raises ImportError or AttributeError."""
    module, _, path = target.partition(":")
    value: Any = importlib.import_module(module)
    for part in filter(None, path.split(".")):
        value = getattr(value, part)
    return value


def _thread_started(tree: ast.AST, name: str) -> bool:
    """Whether the code starts a threading.Thread named `name` (a prefix, for an f-string name)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute | ast.Name):
            continue
        if (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) != "Thread":
            continue
        for keyword in node.keywords:
            given = keyword.value
            if keyword.arg != "name":
                continue
            if isinstance(given, ast.Constant) and given.value == name:
                return True
            if isinstance(given, ast.JoinedStr) and given.values:
                first = given.values[0]
                if isinstance(first, ast.Constant) and first.value == name:
                    return True
    return False


class Facts(NamedTuple):
    components: tuple[Component, ...] = architecture.COMPONENTS
    threads: tuple[Thread, ...] = architecture.THREADS
    records: tuple[Record, ...] = architecture.RECORDS
    edges: tuple[Edge, ...] = architecture.EDGES
    locks: tuple[Lock, ...] = architecture.LOCKS


def architecture_problems(facts: Facts, sources: dict[str, str]) -> list[str]:
    """Every fact of the table that the code does not bear out; [] if all hold."""
    problems: list[str] = []
    trees = {module: parse(source) for module, source in sources.items()}
    read = {module: read_module(source) for module, source in sources.items()}
    names = {module: facts.names for module, facts in read.items()}
    calls = {module: facts.called for module, facts in read.items()}
    defined = {module: facts.defined for module, facts in read.items()}

    def exists(target: str, what: str) -> bool:
        try:
            resolve(target)
        except (ImportError, AttributeError) as error:
            problems.append(f"{what} {target}: not in the code ({error})")
            return False
        return True

    def modules_of(component: Component) -> list[str]:
        known = [m for m in component.modules if m in trees]
        problems.extend(
            f"component {component.key}: no module {m}" for m in component.modules if m not in trees
        )
        return known

    components = {c.key: c for c in facts.components}
    for component in facts.components:
        exists(component.anchor, f"component {component.key}:")
        modules_of(component)

    threads = {t.key: t for t in facts.threads}
    for thread in facts.threads:
        if thread.name and not _thread_started(trees.get(thread.started_in, ast.Module([], [])), thread.name):
            problems.append(
                f"thread {thread.key}: {thread.started_in} starts no thread named {thread.name!r}"
            )

    records = {r.name: r for r in facts.records}
    for record in facts.records:
        if exists(f"{record.module}:{record.name}", "record") and record.constant_of is not None:
            value = resolve(f"{record.module}:{record.name}")
            if type(value).__name__ != record.constant_of:
                problems.append(f"record {record.name}: a {type(value).__name__}, not a {record.constant_of}")

    for edge in facts.edges:
        where = f"edge {edge.sender} -> {edge.receiver}"
        if edge.sender not in components or edge.receiver not in components:
            problems.append(f"{where}: names a component that is not in the table")
            continue
        senders, receivers = modules_of(components[edge.sender]), modules_of(components[edge.receiver])
        if not edge.records and not edge.vias:
            problems.append(f"{where}: says nothing that can be checked (no record, no call)")
        for name in edge.records:
            record = records.get(name)
            if record is None:
                problems.append(f"{where}: {name} is not a record of the table")
                continue
            if record.constant_of is None:
                if not any(name in calls[m] for m in senders):
                    problems.append(f"{where}: {name} is never constructed in {', '.join(senders)}")
            elif not any(name in names[m] for m in senders):
                problems.append(f"{where}: {name} is never sent from {', '.join(senders)}")
            read_as = {name} if record.constant_of is None else {name, record.constant_of}
            if not any(read_as & names[m] or name in defined[m] for m in receivers):
                problems.append(f"{where}: {name} is never read in {', '.join(receivers)}")
        callers = senders if edge.called_by == "sender" else receivers
        for via in edge.vias:
            if not exists(via.target, f"{where}: via"):
                continue
            method = via.target.rsplit(":", 1)[1].rsplit(".", 1)[-1]
            if not any((via.called_as or method) in calls[m] for m in callers):
                problems.append(
                    f"{where}: {via.called_as or method}() is never called in {', '.join(callers)}"
                )
            if via.called_as is not None and method not in names.get(architecture.WIRING, set()):
                problems.append(
                    f"{where}: {architecture.WIRING} never hands over {method} as {via.called_as}"
                )

    made, unnamed = scan_locks(sources)
    problems += unnamed
    listed: set[tuple[str, str, str]] = set()
    for lock in facts.locks:
        module, _, owner = lock.owner.partition(":")
        where = f"lock {owner}.{lock.attribute}"
        exists(lock.owner, f"{where}: owner")
        found = made.get((module, owner, lock.attribute))
        if found is None:
            problems.append(
                f"{where}: no `self.{lock.attribute} = threading.{lock.kind}(...)` in {lock.owner}"
            )
        elif found.kind != lock.kind:
            problems.append(f"{where}: a {found.kind} in the code, not a {lock.kind}")
        elif found.over != lock.over:
            problems.append(f"{where}: made over {found.over}, not over {lock.over}")
        listed.add((module, owner, lock.attribute))
        if lock.over is not None:
            listed.add((module, owner, lock.over))
        if not lock.taken_by:
            problems.append(f"{where}: taken by no thread")
        problems += [
            f"{where}: {key} is not a thread of the table" for key in lock.taken_by if key not in threads
        ]
        for taker in lock.taken_in:
            if taker not in trees or lock.attribute not in read[taker].held_with:
                problems.append(f"{where}: {taker} holds no `with ....{lock.attribute}`")
    for module, owner, attribute in sorted(made.keys() - listed):
        kind = made[(module, owner, attribute)].kind
        problems.append(f"{module}:{owner}.{attribute}: a threading.{kind} not in refpool.architecture.LOCKS")
    return problems


def test_every_architecture_fact_holds_in_the_code() -> None:
    assert architecture_problems(Facts(), package_sources()) == []


def test_the_scan_finds_the_locks_of_the_table() -> None:
    # The check below the others rests on this scan: it must find the real locks, in each form.
    made, unnamed = scan_locks(package_sources())
    assert unnamed == []
    assert made[("refpool.lifecycle", "Lifecycle", "lock")].kind == "RLock"
    cond = made[("refpool.roster", "Roster", "cond")]
    assert (cond.kind, cond.over) == ("Condition", "_lock")
    assert made[("refpool.roster", "WorkerRecord", "writing")].kind == "Lock"  # a dataclass field
    assert len(made) == sum(1 + (lock.over is not None) for lock in architecture.LOCKS)


def _problems_with(**changes: Iterable[Any]) -> list[str]:
    return architecture_problems(
        Facts()._replace(**{k: tuple(v) for k, v in changes.items()}), package_sources()
    )


def test_a_made_up_lock_is_reported() -> None:
    spare = Lock("refpool.roster:Roster", "_spare", "Lock", ("task_handler",), ("refpool.roster",), "nothing")
    problems = _problems_with(locks=[*architecture.LOCKS, spare])
    assert "lock Roster._spare: no `self._spare = threading.Lock(...)` in refpool.roster:Roster" in problems
    assert "lock Roster._spare: refpool.roster holds no `with ...._spare`" in problems


def test_a_lock_of_the_wrong_kind_or_thread_is_reported() -> None:
    wrong = [
        lock._replace(kind="Lock", taken_by=("nobody",)) if lock.attribute == "lock" else lock
        for lock in architecture.LOCKS
    ]
    problems = _problems_with(locks=wrong)
    assert "lock Lifecycle.lock: a RLock in the code, not a Lock" in problems
    assert "lock Lifecycle.lock: nobody is not a thread of the table" in problems


def test_a_lock_missing_from_the_table_is_reported() -> None:
    without = [lock for lock in architecture.LOCKS if lock.attribute != "_soon_lock"]
    assert _problems_with(locks=without) == [
        "refpool.result_handler:ResultHandler._soon_lock: a threading.Lock not in refpool.architecture.LOCKS"
    ]


def test_a_new_lock_in_the_code_is_reported() -> None:
    sources = package_sources()
    sources["refpool.timekeeper"] = sources["refpool.timekeeper"].replace(
        "self._wake = threading.Event()",
        "self._wake = threading.Event()\n        self._guard = threading.Lock()",
    )
    sources["refpool.jobs"] += (
        "\n\n_REGISTRY = [threading.RLock()]\n\n\ndef _guarded():\n    lock = threading.Lock()\n"
    )
    problems = architecture_problems(Facts(), sources)
    assert (
        "refpool.timekeeper:Timekeeper._guard: a threading.Lock not in refpool.architecture.LOCKS" in problems
    )
    assert sum(p.startswith("refpool.jobs, line") for p in problems) == 2  # in a list, a local
    assert len(problems) == 3


def test_a_made_up_message_is_reported() -> None:
    ticket = Record("Ticket", "refpool.messages")
    edge = Edge("task_handler", "workers", ("Ticket",), ())
    problems = _problems_with(records=[*architecture.RECORDS, ticket], edges=[*architecture.EDGES, edge])
    assert any(p.startswith("record refpool.messages:Ticket: not in the code") for p in problems)
    assert "edge task_handler -> workers: Ticket is never constructed in refpool.task_handler" in problems
    assert "edge task_handler -> workers: Ticket is never read in refpool.worker" in problems


def test_a_message_on_the_wrong_edge_is_reported() -> None:
    # WorkerExited is real, but the task handler never makes one, and the roster never reads one.
    edge = Edge("task_handler", "roster", ("WorkerExited", "SHUTDOWN"), ())
    assert _problems_with(edges=[*architecture.EDGES, edge]) == [
        "edge task_handler -> roster: WorkerExited is never constructed in refpool.task_handler",
        "edge task_handler -> roster: WorkerExited is never read in refpool.roster",
        "edge task_handler -> roster: SHUTDOWN is never sent from refpool.task_handler",
    ]


def test_a_call_that_is_not_made_is_reported() -> None:
    edges = [
        Edge("timekeeper", "job_cache", (), (Via("refpool.jobs:JobCache.deliver"),)),
        Edge("timekeeper", "roster", (), (Via("refpool.roster:Roster.expire_soon"),)),
        Edge(
            "result_handler",
            "worker_handler",
            (),
            (Via("refpool.worker_handler:WorkerHandler.stop", "_stop"),),
        ),
        Edge("timekeeper", "roster", (), ()),
    ]
    problems = _problems_with(edges=[*architecture.EDGES, *edges])
    assert problems[0] == "edge timekeeper -> job_cache: deliver() is never called in refpool.timekeeper"
    assert problems[1].startswith(
        "edge timekeeper -> roster: via refpool.roster:Roster.expire_soon: not in the code"
    )
    assert problems[2:] == [
        "edge result_handler -> worker_handler: _stop() is never called in refpool.result_handler",
        "edge timekeeper -> roster: says nothing that can be checked (no record, no call)",
    ]


def test_a_thread_or_component_not_in_the_code_is_reported() -> None:
    problems = _problems_with(
        threads=[
            *architecture.THREADS,
            Thread("reaper", "reaper", "refpool-reaper", "refpool.result_handler"),
        ],
        components=[
            *architecture.COMPONENTS,
            Component("reaper", "reaper", "refpool.reaper:Reaper", ("refpool.reaper",), "thread", ""),
        ],
    )
    assert "thread reaper: refpool.result_handler starts no thread named 'refpool-reaper'" in problems
    assert "component reaper: no module refpool.reaper" in problems
    assert any(p.startswith("component reaper: refpool.reaper:Reaper: not in the code") for p in problems)
