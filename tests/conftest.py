"""Fixtures: one behavioural test runs on every kind of pool."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

import refpool
from refpool.conform.fuzz_db import example_database

from pool_helpers import MakePool


def _fuzz_database() -> ExampleDatabase:
    shared = os.environ.get("REFPOOL_FUZZ_DB")
    if not shared:
        return DirectoryBasedExampleDatabase(".hypothesis/fuzz")
    return example_database(shared)


# Two profiles: "ci" (the default: every push, a few minutes in all, the same
# examples each run) and "fuzz" (long runs at night, keeping what it finds in an
# example database: .hypothesis/fuzz, or REFPOOL_FUZZ_DB, a directory or
# redis://HOST:PORT shared by many machines, as `refpool conform --fuzz-db`).
# Select with REFPOOL_HYPOTHESIS_PROFILE=fuzz or pytest --hypothesis-profile=fuzz.
# Registering "ci" replaces the profile that Hypothesis loads by itself when
# CI=true (PITFALLS.md).
settings.register_profile(
    "ci", deadline=None, max_examples=25, stateful_step_count=15, derandomize=True, database=None
)
settings.register_profile(
    "fuzz",
    deadline=None,
    max_examples=int(os.environ.get("REFPOOL_FUZZ_EXAMPLES", "2000")),
    stateful_step_count=40,
    database=_fuzz_database(),
)
settings.load_profile(os.environ.get("REFPOOL_HYPOTHESIS_PROFILE", "ci"))

PROCESS_KINDS = ["fork", "spawn", "forkserver"]
ALL_KINDS = [*PROCESS_KINDS, "thread"]


def _pool_factory(kind: str) -> Iterator[MakePool]:
    made: list[refpool.Pool] = []

    def make(processes: int = 2, **options: Any) -> refpool.Pool:
        pool: refpool.Pool
        if kind == "thread":
            pool = refpool.ThreadPool(processes, **options)
        else:
            pool = refpool.Pool(processes, context=multiprocessing.get_context(kind), **options)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.terminate()
        pool.join()


@pytest.fixture(params=ALL_KINDS)
def make_pool(request: pytest.FixtureRequest) -> Iterator[MakePool]:
    """Makes pools of the parametrized kind; terminates and joins them after the test."""
    yield from _pool_factory(request.param)


@pytest.fixture(params=PROCESS_KINDS)
def make_process_pool(request: pytest.FixtureRequest) -> Iterator[MakePool]:
    """As make_pool, for tests that need real processes (killing workers, pickling)."""
    yield from _pool_factory(request.param)


@pytest.fixture
def pool_kind(request: pytest.FixtureRequest) -> str:
    for name in ("make_pool", "make_process_pool"):
        if name in request.fixturenames:
            return str(request.node.callspec.params[name])
    raise LookupError("pool_kind needs make_pool or make_process_pool")
