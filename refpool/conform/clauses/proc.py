"""The processes of this check, read from /proc, so that any pool can be checked: its children
(the workers), its descendants (reaped after each check) and its open file descriptors."""

from __future__ import annotations

import contextlib
import os
import signal


def have_proc() -> bool:
    return os.path.exists(f"/proc/{os.getpid()}/stat")


def child_processes(*, zombies: bool = False) -> set[int]:
    """Our child processes, without multiprocessing's helpers (resource tracker, fork server)."""
    me = str(os.getpid())
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat_file:
                fields = stat_file.read().rpartition(")")[2].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline_file:
                cmdline = cmdline_file.read()
        except OSError:
            continue
        state, parent = fields[0], fields[1]
        if parent != me or (state == "Z" and not zombies):
            continue
        if b"resource_tracker" in cmdline or b"forkserver" in cmdline:
            continue
        found.add(int(entry))
    return found


def kill_descendants() -> None:
    """SIGKILL every process descended from this one (found in /proc; nothing without it)."""
    if not have_proc():
        return
    children: dict[str, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat_file:
                    parent = stat_file.read().rpartition(")")[2].split()[1]
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(entry)
    pending = list(children.get(str(os.getpid()), []))
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, []))
        with contextlib.suppress(OSError):
            os.kill(int(pid), signal.SIGKILL)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))
