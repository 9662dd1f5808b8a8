"""Gate: a folder through which a check holds its tasks and learns what they did."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from types import TracebackType

from ..registry import Broken, step
from .common import POLL, WAIT


class Gate:
    """A folder: tasks.hold() notes in it that a task started or finished, and waits for `open`.

    Files work the same between threads and processes, whatever the start
    method. `with Gate() as gate:` removes it on the way out, which lets every
    task still waiting go (tasks.hold treats a missing gate as open).
    """

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="refpool-conform-")

    def __enter__(self) -> Gate:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.remove()

    def task(self, name: str, wait: bool = True) -> tuple[str, str, bool]:
        return (self.folder, name, wait)

    def has(self, entry: str) -> bool:
        return os.path.exists(os.path.join(self.folder, entry))

    def wait_for(self, entries: list[str], what: str, timeout: float = WAIT) -> None:
        step(what)
        deadline = time.monotonic() + timeout
        while not all(self.has(entry) for entry in entries):
            if time.monotonic() > deadline:
                missing = [e for e in entries if not self.has(e)]
                raise Broken(f"{what}: still missing after {timeout:g} s: {', '.join(missing)}")
            time.sleep(POLL)

    def pid_of(self, name: str) -> int:
        """The pid that tasks.hold_then_report_pid wrote for task `name`, once it has started."""
        self.wait_for([f"started-{name}"], f"wait for task {name} to start")
        with open(os.path.join(self.folder, f"pid-{name}")) as pid_file:
            return int(pid_file.read())

    def open(self) -> None:
        # A removed gate is open already: every task that waited has gone on.
        with contextlib.suppress(FileNotFoundError), open(os.path.join(self.folder, "open"), "a"):
            pass

    def remove(self) -> None:
        """Let every waiting task go."""
        shutil.rmtree(self.folder, ignore_errors=True)
