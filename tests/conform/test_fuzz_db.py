"""The fuzzer's example database: a divergence one run finds, the next run replays first.

The second run gets a different seed and a single example, which (a control run
shows) finds nothing by itself: what finds the divergence is the replay. The
first run is made in a subprocess, so the database key is shown to be the same
in another process, as it must be on another machine. The same against a real
redis-server that the test starts on a free port of 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import multiprocessing.pool
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from refpool.cli import main as refpool_main
from refpool.conform.fuzz import FuzzResult, fuzz, fuzz_in_subprocess
from refpool.conform.fuzz_db import example_database

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TARGET = "test_fuzz_db:LosesOneOfThree"
OTHER_SEED = 12345  # the control run shows this seed's one example finds nothing


class LosesOneOfThree(multiprocessing.pool.ThreadPool):
    """imap_unordered over three items or more loses one: the examples of a seed (0) meet it
    soon, the one example of another seed (OTHER_SEED) does not. The stdlib's ThreadPool, with
    refpool's extensions not checked, so that these tests see this bug and no other."""

    def imap_unordered(self, func: Any, iterable: Any, chunksize: int = 1, **options: Any) -> Any:
        items = list(iterable)
        results = super().imap_unordered(func, items, chunksize, **options)
        if len(items) < 3:
            return results
        results.next()
        return results


@pytest.fixture(autouse=True)
def _importable_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """The subprocess imports this module as the target."""
    path = os.pathsep.join([str(ROOT), str(HERE), os.environ.get("PYTHONPATH", "")])
    monkeypatch.setenv("PYTHONPATH", path)


def found_then_replayed(fuzz_db: str) -> tuple[FuzzResult, FuzzResult]:
    """A first run (in a subprocess) that finds the divergence; a second that replays it."""
    first = fuzz_in_subprocess(TARGET, 50, deadline=60, fuzz_db=fuzz_db, shrink_seconds=10, extensions=False)
    assert first.status == "FAIL", first.message
    assert "imap_unordered" in first.script, first.script
    # Fuzzing another target with the same database must not delete this target's example.
    assert fuzz("stdlib-threads", 3, seed=OTHER_SEED, fuzz_db=fuzz_db, extensions=False).status == "PASS"
    second = fuzz(TARGET, 1, seed=OTHER_SEED, fuzz_db=fuzz_db, shrink_seconds=10, extensions=False)
    return first, second


def assert_replayed(first: FuzzResult, second: FuzzResult) -> None:
    assert second.status == "FAIL", second.message
    assert second.examples == 1  # the first example run is the one replayed
    assert second.clause == first.clause
    assert "imap_unordered" in second.script  # (the replay may shrink it further than the first run did)


@pytest.mark.timeout(120)
def test_without_the_database_one_example_of_that_seed_finds_nothing() -> None:
    """The control: what makes the second run fail is the replay, not its own example."""
    assert fuzz(TARGET, 1, seed=OTHER_SEED, extensions=False).status == "PASS"


@pytest.mark.timeout(120)
def test_a_directory_database_replays_a_divergence_first(tmp_path: pathlib.Path) -> None:
    first, second = found_then_replayed(str(tmp_path / "fuzz-db"))
    assert_replayed(first, second)


# --- a real Redis server ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers_ping(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as server:
        server.sendall(b"PING\r\n")
        return server.recv(16).startswith(b"+PONG")
    return False


@pytest.fixture
def redis_url() -> Iterator[str]:
    """redis://127.0.0.1:PORT of a redis-server of our own, stopped after the test."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server binary (Debian: apt-get install redis-server)")
    pytest.importorskip("redis", reason="no redis package (pip install 'refpool[redis]')")
    port = _free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not _answers_ping(port):  # the socket is polled: no fixed sleep
            if server.poll() is not None:
                pytest.fail(f"redis-server exited with code {server.returncode} before answering PING")
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server did not answer PING on port {port} within 10 s")
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.timeout(120)
def test_a_redis_database_replays_a_divergence_first(redis_url: str) -> None:
    import redis

    first, second = found_then_replayed(redis_url)
    assert_replayed(first, second)
    port = int(redis_url.rsplit(":", 1)[1])
    keys = redis.Redis(port=port).keys(b"*")
    # One key for the divergences of this target, of the target's name: the same on every machine.
    assert any(f"refpool-fuzz {TARGET} ".encode() in key for key in keys), keys


def fuzz_profile_database(fuzz_db: str) -> str:
    """repr of the database of the stateful tests' fuzz profile, given REFPOOL_FUZZ_DB."""
    probe = (
        "import conftest; from hypothesis import settings; print(repr(settings.get_profile('fuzz').database))"
    )
    env = {
        **os.environ,
        "REFPOOL_FUZZ_DB": fuzz_db,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_fuzz_profile_takes_its_database_from_the_environment(tmp_path: pathlib.Path) -> None:
    assert str(tmp_path / "shared") in fuzz_profile_database(str(tmp_path / "shared"))


def test_the_fuzz_profile_can_share_a_redis_database(redis_url: str) -> None:
    assert "RedisExampleDatabase" in fuzz_profile_database(redis_url)


# --- values that cannot be used -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("redis://127.0.0.1", "redis://HOST:PORT"),
        ("redis://:6379", "redis://HOST:PORT"),
        ("ftp://example.org/db", "unknown scheme 'ftp'"),
    ],
)
def test_a_bad_value_is_refused_naming_it(value: str, says: str) -> None:
    with pytest.raises(ValueError, match="--fuzz-db") as refused:
        example_database(value)
    assert repr(value) in str(refused.value)
    assert says in str(refused.value)


def test_a_missing_redis_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis now raises ImportError
    with pytest.raises(ValueError, match=r"needs the redis package: pip install 'refpool\[redis\]'"):
        example_database(f"redis://127.0.0.1:{_free_port()}")


def test_a_file_is_not_a_directory_database(tmp_path: pathlib.Path) -> None:
    file = tmp_path / "db"
    file.write_text("")
    with pytest.raises(ValueError, match="is a file"):
        example_database(str(file))


def test_refpool_conform_refuses_a_bad_value_before_any_check(capsys: pytest.CaptureFixture[str]) -> None:
    code = refpool_main(["conform", "refpool-threads", "--fuzz-db", "ftp://x/db"])
    assert code == 2
    err = capsys.readouterr().err
    assert "'ftp://x/db'" in err and "unknown scheme" in err
    assert "clause 1" not in err and "[1/" not in err  # no check ran


def test_the_fuzzer_module_refuses_a_bad_value_before_fuzzing() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "refpool.conform.fuzz", "refpool-threads", "--fuzz-db", "redis://127.0.0.1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "'redis://127.0.0.1'" in done.stderr and "redis://HOST:PORT" in done.stderr
    assert "FUZZ " not in done.stdout  # no run, so no result
