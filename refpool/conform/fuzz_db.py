"""Where the fuzzer keeps its divergences (--fuzz-db): a directory, or a Redis server
shared between CI machines, so that a divergence one machine finds every other replays."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterable

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase


def example_database(value: str) -> ExampleDatabase:
    """--fuzz-db's value: a directory, or redis://HOST:PORT (Hypothesis's Redis database,
    `pip install 'refpool[redis]'`). ValueError naming the value if it cannot be used,
    so that a bad value stops the run before any check, not after the whole run."""
    if "://" not in value:
        if os.path.exists(value) and not os.path.isdir(value):
            raise ValueError(f"--fuzz-db {value!r} is a file; give a directory or redis://HOST:PORT")
        return DirectoryBasedExampleDatabase(value)
    address = urllib.parse.urlsplit(value)
    if address.scheme != "redis":
        raise ValueError(
            f"--fuzz-db {value!r}: unknown scheme {address.scheme!r}; give a directory or redis://HOST:PORT"
        )
    try:
        port = address.port
    except ValueError:
        port = None
    if not address.hostname or port is None:
        raise ValueError(f"--fuzz-db {value!r}: a Redis database is given as redis://HOST:PORT")
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError as error:
        raise ValueError(
            f"--fuzz-db {value!r} needs the redis package: pip install 'refpool[redis]'"
        ) from error
    client = redis.Redis(host=address.hostname, port=port, socket_connect_timeout=5, socket_timeout=30)
    try:
        client.ping()
    except redis.RedisError as error:
        raise ValueError(f"--fuzz-db {value!r}: no Redis server answers there ({error})") from error
    return RedisExampleDatabase(client)


class TargetExamples(ExampleDatabase):
    """One target's part of a shared example database: every key is prefixed with the target.

    Hypothesis's key is the same for every target (it is derived from the fuzzer's
    code), and when it replays an example that no longer fails it deletes it: without
    the prefix, fuzzing one target would delete the divergences another target saved.
    """

    def __init__(self, shared: ExampleDatabase, target: str) -> None:
        super().__init__()
        self.shared = shared
        self.prefix = f"refpool-fuzz {target} ".encode()

    def save(self, key: bytes, value: bytes) -> None:
        self.shared.save(self.prefix + key, value)

    def fetch(self, key: bytes) -> Iterable[bytes]:
        return self.shared.fetch(self.prefix + key)

    def delete(self, key: bytes, value: bytes) -> None:
        self.shared.delete(self.prefix + key, value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self.shared.move(self.prefix + src, self.prefix + dest, value)
