"""The conformance report: a table of clauses, a summary, and the fuzzer's finding."""

from __future__ import annotations

import json
import platform
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .runner import Verdict

STATUSES = ("PASS", "FAIL", "HANG", "CRASH", "SKIP")


@dataclass
class Report:
    target: str
    version: str
    verdicts: Sequence[Verdict]
    fuzz: dict[str, Any] | None = None  # FuzzResult as a dict, when the fuzzer ran
    python: str = field(default_factory=platform.python_version)

    @property
    def passed(self) -> bool:
        clauses_ok = all(v.status in ("PASS", "SKIP") for v in self.verdicts)
        return clauses_ok and not (self.fuzz and self.fuzz.get("divergence"))

    def summary(self) -> str:
        counts = Counter(v.status for v in self.verdicts)
        parts = [f"{counts[s]} {s}" for s in STATUSES if counts[s]]
        text = f"{len(self.verdicts)} clauses: " + ", ".join(parts)
        not_passing = [v for v in self.verdicts if v.status not in ("PASS", "SKIP")]
        extensions = sum(1 for v in not_passing if v.extension)
        if extensions:
            text += f" ({extensions} of the {len(not_passing)} not passing are refpool extensions)"
        return text

    @property
    def heading(self) -> str:
        python = "" if self.version.startswith("Python") else f", Python {self.python}"
        return f"{self.target} ({self.version}{python})"

    def fuzz_line(self) -> str:
        if self.fuzz is None:
            return "fuzz: not run"
        if self.fuzz.get("status") == "SKIP":
            return f"fuzz: not run: {self.fuzz.get('message', '')}"
        if not self.fuzz.get("divergence"):
            return f"fuzz: {self.fuzz.get('examples', 0)} examples, no divergence from the model"
        where = self.fuzz.get("clause") or self.fuzz.get("status", "?")  # HANG or CRASH name no clause
        kind = " (a refpool extension)" if self.fuzz.get("extension") else ""
        message = str(self.fuzz.get("message", ""))
        if not message.startswith(str(where)):
            message = f"{where}: {message}"
        return f"fuzz: divergence{kind}, {message}"


def _title(verdict: Verdict) -> str:
    return f"{verdict.title} (refpool)" if verdict.extension else verdict.title


def as_text(report: Report) -> str:
    lines = [f"refpool conform {report.heading}", ""]
    width = max((len(_title(v)) for v in report.verdicts), default=5)
    lines.append(f"{'clause':<8} {'result':<6} {'title':<{width}}  reason")
    for v in report.verdicts:
        lines.append(f"{v.clause:<8} {v.status:<6} {_title(v):<{width}}  {v.reason}".rstrip())
    lines += ["", report.summary(), report.fuzz_line()]
    if report.fuzz and report.fuzz.get("divergence") and report.fuzz.get("script"):
        lines += ["", "A script that reproduces it:", "", report.fuzz["script"]]
    lines.append("")
    return "\n".join(lines)


def as_markdown(report: Report) -> str:
    lines = [
        f"### {report.heading}",
        "",
        "| clause | result | title | reason |",
        "|---|---|---|---|",
    ]
    for v in report.verdicts:
        reason = v.reason.replace("|", "\\|")
        lines.append(f"| {v.clause} | {v.status} | {_title(v)} | {reason} |")
    lines += ["", f"{report.summary()}. {report.fuzz_line()}."]
    if report.fuzz and report.fuzz.get("divergence") and report.fuzz.get("script"):
        lines += ["", "```python", report.fuzz["script"].rstrip(), "```"]
    lines.append("")
    return "\n".join(lines)


def as_json(report: Report) -> str:
    document = {
        "target": report.target,
        "version": report.version,
        "python": report.python,
        "passed": report.passed,
        "summary": report.summary(),
        "verdicts": [asdict(v) for v in report.verdicts],
        "fuzz": report.fuzz,
    }
    return json.dumps(document, indent=2) + "\n"


FORMATS = {"text": as_text, "markdown": as_markdown, "json": as_json}
