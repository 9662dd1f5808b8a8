"""Ray's pool runs on a Ray cluster: the cluster the `ray` target joins, and one to start for a run.

Ray's `Pool(n)`, in a process that has joined no cluster, starts a private one of n
CPUs, and from then on refuses any larger pool in that process ("only 1 CPUs in the
ray cluster"). A check run that way would pay a cluster's start-up and test Ray's
set-up more than its pool. So the `ray` target runs only on a cluster started
beforehand and named by RAY_ADDRESS, which Ray's Pool reads itself: every check's
process joins the same cluster, where any pool of up to its CPUs is accepted.
`local_ray_cluster` starts one on this machine for a run, and stops it after.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator

RAY_ADDRESS = "RAY_ADDRESS"

# The largest pool a check makes has 3 workers (tests/conform/test_ray.py holds the
# checks to this); one more, so that Ray's Pool(None), which takes every CPU of the
# cluster, shows a size that is not this 2-core machine's.
CLUSTER_CPUS = 4

HOW_TO_START = (
    f"start one with `RAY_AUTH_MODE=token ray start --head --num-cpus {CLUSTER_CPUS}`, set "
    "RAY_ADDRESS to the address it prints and RAY_AUTH_MODE=token, and end it with `ray stop` "
    "(spec/make_conformance.py does all this itself)"
)


class ClusterUnavailable(Exception):
    """There is no Ray cluster to run on; the message says why and how to start one."""


def ray_cluster() -> str:
    """Where the `ray` target's pools run ("the Ray cluster at HOST:PORT"), or ClusterUnavailable."""
    address = os.environ.get(RAY_ADDRESS, "")
    if not address:
        raise ClusterUnavailable(
            f"the ray target runs on a running Ray cluster, and RAY_ADDRESS names none: {HOW_TO_START}"
        )
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit():
        # "local" would make each check start a private cluster; "auto" looks for the
        # address in TMPDIR, which the runner gives each check afresh.
        raise ClusterUnavailable(
            f"RAY_ADDRESS={address!r} is not the HOST:PORT of a running Ray cluster: {HOW_TO_START}"
        )
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise ClusterUnavailable(
            f"no Ray cluster answers at RAY_ADDRESS={address} ({error}): {HOW_TO_START}"
        ) from None
    return f"the Ray cluster at {address}"


@contextlib.contextmanager
def local_ray_cluster(cpus: int = CLUSTER_CPUS, start_timeout: float = 120) -> Iterator[dict[str, str]]:
    """A Ray cluster of `cpus` CPUs on this machine while the block runs; yields the
    environment variables that make the `ray` target (and Ray's Pool) join it.

    It is `ray start --head --block` in a session of its own, with a temporary folder,
    a free port and an authentication token of its own, so that it neither finds nor
    disturbs another cluster on the machine. It is stopped afterwards, also on failure,
    by its process ID (on SIGTERM it stops its daemons), not by `ray stop`, which would
    end every Ray process of the machine.
    """
    if importlib.util.find_spec("ray") is None:
        raise ClusterUnavailable("cannot start a Ray cluster: ray is not installed (pip install ray)")
    folder = pathlib.Path(tempfile.mkdtemp(prefix="refpool-ray-"))
    # Token authentication as Ray's own `ray start` chooses, without writing the
    # token to ~/.ray: the cluster and the checks read it from their environment.
    environment = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    command = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
        f"--num-cpus={cpus}", "--port=0", f"--temp-dir={folder}",
        "--include-dashboard=false", "--disable-usage-stats",
    ]  # fmt: skip
    head = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, **environment},
    )
    log = _HeadLog(head)
    try:
        # Written by `ray start` before it says it blocks: the address the cluster listens on.
        address_file = folder / "ray_current_cluster"
        if not log.answered.wait(start_timeout) or not address_file.exists():
            raise ClusterUnavailable(f"`ray start --head` did not start a cluster: {log.tail()}")
        yield {**environment, RAY_ADDRESS: address_file.read_text().strip()}
    finally:
        _stop(head)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


class _HeadLog:
    """Reads what `ray start --block` prints, to the end, so that it never blocks on a full pipe;
    `answered` is set when it says it blocks (the cluster is up and its address written), or
    when it ends without saying so."""

    STARTED = "will now block forever"

    def __init__(self, head: subprocess.Popen[str]) -> None:
        self.head = head
        self.lines: collections.deque[str] = collections.deque(maxlen=10)
        self.answered = threading.Event()
        self.thread = threading.Thread(target=self._read, name="ray-head-log", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.head.stdout is not None
        for line in self.head.stdout:
            self.lines.append(line.rstrip())
            if self.STARTED in line:
                self.answered.set()
        self.answered.set()

    def close(self) -> None:
        """Once `ray start` and its session have ended: the pipe is at its end, or soon."""
        self.thread.join(timeout=5)
        assert self.head.stdout is not None
        self.head.stdout.close()

    def tail(self) -> str:
        return " / ".join(self.lines) or "it printed nothing"


def _stop(head: subprocess.Popen[str]) -> None:
    """End the cluster: SIGTERM to `ray start`, which stops its daemons; then its session, for
    anything that outlived it (or everything, if it did not stop in time)."""
    head.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing was left
        os.killpg(head.pid, signal.SIGKILL)
    head.wait()
