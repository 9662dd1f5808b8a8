"""The oracle in a CI pipeline: shards, JUnit XML, progress a log can read, exit codes.

The clause IDs in the reports below are made up (ALPHA-1, ...) or read from the registry: a
real one written here would count, in the spec's index, as a check of that clause.
"""

from __future__ import annotations

import io
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from typing import Any

import pytest

from refpool.conform.ci import junit_xml, parse_shard, progress_reporter, shard
from refpool.conform.report import Report
from refpool.conform.runner import Verdict, select


def verdict(clause: str, status: str, reason: str = "") -> Verdict:
    return Verdict(clause, f"title of {clause}", status, reason, 0.25, clause.startswith("GAMMA"))


def test_shards_cover_the_clauses_once_each() -> None:
    clauses = select(None)
    for count in (1, 2, 3, 7):
        shards = [shard(clauses, index, count) for index in range(1, count + 1)]
        assert sorted(c for part in shards for c in part) == sorted(clauses)
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert shard(["A", "B", "C", "D", "E"], 2, 2) == ["B", "D"]


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2"])
def test_a_bad_shard_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match="--shard") as raised:
        parse_shard(text)
    assert repr(text) in str(raised.value)


def test_junit_xml_has_one_case_per_clause_with_the_reason() -> None:
    report = Report(
        "mypool",
        "1.0",
        [
            verdict("ALPHA-1", "PASS"),
            verdict("BETA-1", "FAIL", "get() waited"),
            verdict("GAMMA-1", "SKIP", "n/a"),
            verdict("DELTA-1", "HANG", "no answer"),
        ],
        {
            "divergence": True,
            "message": "BETA-2: a result was lost",
            "clause": "BETA-2",
            "script": "pool = ...",
        },
    )
    root = ElementTree.fromstring(junit_xml(report))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "5",
        "2",
        "1",
        "1",
    )
    cases = {case.get("name", "").partition(":")[0]: case for case in suite.iter("testcase")}
    assert list(cases) == ["ALPHA-1", "BETA-1", "GAMMA-1", "DELTA-1", "fuzz"]
    assert len(cases["ALPHA-1"]) == 0
    failure = cases["BETA-1"].find("failure")
    assert failure is not None and failure.get("message") == "BETA-1 FAIL: get() waited"
    assert cases["GAMMA-1"].find("skipped") is not None and "(refpool)" in cases["GAMMA-1"].get("name", "")
    assert cases["DELTA-1"].find("error") is not None
    assert cases["fuzz"].find("failure") is not None
    assert cases["fuzz"].findtext("system-out") == "pool = ..."


def test_progress_is_a_line_per_clause_in_a_log() -> None:
    log = io.StringIO()  # not a terminal
    report, finish = progress_reporter(log)
    report(1, 2, verdict("ALPHA-1", "PASS"))
    report(2, 2, verdict("BETA-1", "FAIL", "get() waited"))
    finish()
    assert log.getvalue().splitlines() == [
        "[1/2] ALPHA-1 PASS (0.2 s)",
        "[2/2] BETA-1 FAIL (0.2 s): get() waited",
    ]


def conform(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "refpool", "conform", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_the_command_writes_junit_xml_for_its_shard(tmp_path: pathlib.Path) -> None:
    """End to end: two shards of the first three clauses, JUnit XML from each, progress lines
    in the log."""
    first_three = select(None)[:3]
    results = []
    for index in (1, 2):
        xml_file = tmp_path / f"shard{index}.xml"
        done = conform(
            "refpool-threads", "--clauses", ",".join(first_three), "--shard", f"{index}/2",
            "--junit-xml", str(xml_file), "--fuzz-examples", "0",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        names = [c.get("name", "").partition(":")[0] for c in ElementTree.parse(xml_file).iter("testcase")]
        results.append(names)
        # One line per clause as it finishes: in the order they finish, which --jobs 2 may change.
        progress = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("[")]
        assert sorted(progress) == sorted(names)
    assert results == [[first_three[0], first_three[2]], [first_three[1]]]


def test_the_exit_codes_are_documented_and_kept() -> None:
    assert "exit codes: 0" in conform("--help").stdout.replace("\n", " ")
    assert conform("refpool-threads", "--shard", "3/2").returncode == 2
    assert conform("refpool-threads", "--clauses", "NO-SUCH-CLAUSE").returncode == 2


def test_a_bare_assert_in_a_check_says_which_line_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every failed check says what it saw: a bare `assert` reports where it failed. (Compiled
    here, not written in this file, whose asserts pytest rewrites to carry a message.)"""
    from refpool.conform import child
    from refpool.conform.registry import CHECKS, Check

    namespace: dict[str, Any] = {}
    source = "def bare(make_pool):\n    seen = 3\n    assert seen == 4\n"
    exec(compile(source, "a_check.py", "exec"), namespace)
    monkeypatch.setitem(CHECKS, "TEST-1", Check("TEST-1", "a test", namespace["bare"], False))
    assert child.run("refpool-threads", "TEST-1") == {"status": "FAIL", "reason": "assertion failed: bare:3"}
