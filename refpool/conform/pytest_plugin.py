"""A pytest plugin: `pytest --pool-target=module:attribute` runs the clause checks in any test suite.

Installed with refpool (entry point `pytest11`); it does nothing unless the
option is given. Each clause becomes one test item, `conform[LIFE-3]`, that
runs the check in a subprocess with a deadline, as `refpool conform` does.
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("refpool", "pool conformance (refpool)")
    group.addoption("--pool-target", metavar="TARGET", help="check this pool against refpool's spec")
    group.addoption("--pool-clauses", metavar="PATTERN", help="only these clauses, e.g. 'LIFE-*,LOST-1'")
    group.addoption("--pool-timeout", type=float, default=30.0, metavar="S", help="deadline of each check")


class ClauseBroken(Exception):
    pass


class ClauseItem(pytest.Item):
    def __init__(self, *, clause: str, target: str, timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clause = clause
        self.target = target
        self.timeout = timeout

    def runtest(self) -> None:
        from .runner import run_check

        verdict = run_check(self.target, self.clause, self.timeout)
        if verdict.status == "SKIP":
            pytest.skip(verdict.reason)
        if verdict.status != "PASS":
            kind = " (a refpool extension)" if verdict.extension else ""
            raise ClauseBroken(f"{self.clause}{kind}: {verdict.status}: {verdict.reason}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ClauseBroken):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "refpool-conform", None, f"conform[{self.clause}]"


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    target = config.getoption("--pool-target")
    if not target:
        return
    from .runner import select

    timeout = float(config.getoption("--pool-timeout"))
    for clause in select(config.getoption("--pool-clauses")):
        items.append(
            ClauseItem.from_parent(
                session, name=f"conform[{clause}]", clause=clause, target=target, timeout=timeout
            )
        )
