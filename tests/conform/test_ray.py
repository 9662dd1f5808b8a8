"""The `ray` target: it runs only on a running Ray cluster, and the oracle's checks join it.

The first tests need no Ray: without a cluster the target refuses to run and says how to
start one. The others start a real local cluster (`ray start --head`) once for the module,
run a few clauses against it through the oracle, and stop it; they are skipped where Ray is
not installed (the project's .venv; run them with /tmp/peers/bin/python -m pytest).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import pathlib
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from unittest import mock

import pytest

from refpool import cli
from refpool.conform import peers
from refpool.conform.runner import run_all
from refpool.conform.targets import TargetUnavailable, parse

CONFORM = pathlib.Path(peers.__file__).parent


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(peers.RAY_ADDRESS, raising=False)


def test_the_ray_target_without_a_cluster_says_how_to_start_one(no_cluster: None) -> None:
    with pytest.raises(TargetUnavailable, match="RAY_ADDRESS names none") as refused:
        parse("ray").load()
    assert "ray start --head" in str(refused.value)


def test_the_command_refuses_the_ray_target_without_a_cluster(
    no_cluster: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["conform", "ray", "--fuzz-examples", "0"]) == 2  # before any check runs
    assert "RAY_ADDRESS names none" in capsys.readouterr().err


@pytest.mark.parametrize("address", ["local", "auto", "127.0.0.1"])
def test_a_ray_address_that_is_not_a_cluster_is_refused(
    monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    # "local" would let each check start a private cluster, which is what the target avoids.
    monkeypatch.setenv(peers.RAY_ADDRESS, address)
    with pytest.raises(TargetUnavailable, match="not the HOST:PORT of a running Ray cluster"):
        parse("ray").load()


def test_a_ray_address_where_nothing_answers_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as bound:  # a port of ours that does not listen: a connection is refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        monkeypatch.setenv(peers.RAY_ADDRESS, f"127.0.0.1:{port}")
        answers = f"no Ray cluster answers at RAY_ADDRESS=127.0.0.1:{port}"
        with pytest.raises(TargetUnavailable, match=answers):
            parse("ray").load()


def test_the_report_names_the_cluster_the_checks_ran_on(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        monkeypatch.setenv(peers.RAY_ADDRESS, f"127.0.0.1:{port}")
        assert parse("ray").version.endswith(f" on the Ray cluster at 127.0.0.1:{port}")
    assert " on " not in parse("stdlib").version  # a pool that runs in the caller's machine says nothing


def largest_pool(source: str) -> int:
    """The most workers any pool in `source` is made with: make_pool(n), factory(n) and
    process_pool(make_pool, n), n an int or a name given an int in the module."""
    tree = ast.parse(source)
    constants: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, int):
                    constants[target.id] = max(constants.get(target.id, 0), node.value.value)
    sizes = [0]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        position = {"make_pool": 0, "factory": 0, "process_pool": 1}.get(name)
        if position is None or len(node.args) <= position:
            continue
        processes = node.args[position]
        if isinstance(processes, ast.Constant) and isinstance(processes.value, int):
            sizes.append(processes.value)
        elif isinstance(processes, ast.Name) and processes.id in constants:
            sizes.append(constants[processes.id])
    return max(sizes)


def test_the_cluster_has_a_cpu_for_every_worker_a_check_makes() -> None:
    # Ray's Pool refuses more workers than the cluster has CPUs: the checks would fail on it.
    largest = max(largest_pool(path.read_text()) for path in CONFORM.rglob("*.py"))
    assert 2 <= largest <= peers.CLUSTER_CPUS  # 2: the checks' pools were found at all


def test_a_check_with_a_pool_larger_than_the_cluster_is_found() -> None:
    seeded = textwrap.dedent(
        """
        WORKERS = 7
        def check(make_pool):
            make_pool(2)
            process_pool(make_pool, WORKERS)
        """
    )
    assert largest_pool(seeded) == 7 > peers.CLUSTER_CPUS


needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="Ray is not installed here (pip install ray); these tests start a real Ray cluster",
)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[dict[str, str]]:
    """A local Ray cluster for the module: the environment that joins it. Stopped at the end."""
    with peers.local_ray_cluster() as environment:
        yield environment


@needs_ray
@pytest.mark.timeout(240)
def test_clauses_on_a_real_ray_cluster(ray_cluster: dict[str, str]) -> None:
    # Each check's process inherits this environment, and Ray's Pool joins the cluster it names.
    with mock.patch.dict(os.environ, ray_cluster):
        assert parse("ray").version.endswith(f" on the Ray cluster at {ray_cluster[peers.RAY_ADDRESS]}")
        # Clauses whose verdicts on Ray are the same every run (SHUT-4, for one, is not: a job
        # may settle in Ray's result thread just after join() has returned).
        verdicts = {v.clause: v for v in run_all("ray", ["API-1", "API-2", "JOB-2", "JOB-4"], 90)}
    assert {c: v.status for c, v in verdicts.items()} == {
        "API-1": "PASS",
        "API-2": "PASS",
        "JOB-2": "PASS",
        "JOB-4": "FAIL",
    }, {c: v.reason for c, v in verdicts.items()}
    # A failure of Ray's own, not of its set-up: its error_callback gets Ray's wrapper.
    assert "PoolTaskError" in verdicts["JOB-4"].reason


@needs_ray
@pytest.mark.timeout(120)
def test_a_cluster_that_cannot_start_is_said_so() -> None:
    with (
        pytest.raises(peers.ClusterUnavailable, match=r"did not start a cluster: .*must be nonnegative"),
        peers.local_ray_cluster(cpus=-1),
    ):
        pytest.fail("a cluster of -1 CPUs started")


RAY_POOLS = """
import ray
from ray.util.multiprocessing import Pool

for processes in (1, 3, None):
    pool = Pool(processes)
    print(len(pool._actor_pool), end=" ")
    pool.terminate()
print(int(ray.cluster_resources()["CPU"]))
"""


@needs_ray
@pytest.mark.timeout(120)
def test_ray_pools_of_any_size_join_the_one_cluster(ray_cluster: dict[str, str]) -> None:
    # Without a cluster the pool of 3 would be refused: the first pool sized a private one to 1 CPU.
    done = subprocess.run(
        [sys.executable, "-c", RAY_POOLS],
        env={**os.environ, **ray_cluster},
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    cpus = peers.CLUSTER_CPUS
    assert done.stdout.split() == ["1", "3", str(cpus), str(cpus)]
