"""TARGET strings: `module:attribute`, or the name of a pool the oracle knows."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from collections.abc import Callable
from dataclasses import dataclass

from . import peers
from .registry import PoolFactory

BUILTIN: dict[str, tuple[str, str]] = {
    # name: (module:attribute, the distribution that provides it)
    "refpool": ("refpool:Pool", "refpool"),
    "refpool-threads": ("refpool:ThreadPool", "refpool"),
    "stdlib": ("multiprocessing.pool:Pool", ""),
    "stdlib-threads": ("multiprocessing.pool:ThreadPool", ""),
    "billiard": ("billiard.pool:Pool", "billiard"),
    "multiprocess": ("multiprocess.pool:Pool", "multiprocess"),
    "ray": ("ray.util.multiprocessing:Pool", "ray"),
}

# Targets whose pools run on a service started beforehand, not by the pool: a function
# that says where it runs (for the report) or raises peers.ClusterUnavailable.
RUNS_ON: dict[str, Callable[[], str]] = {
    "ray": peers.ray_cluster,
}


class TargetUnavailable(Exception):
    """The target cannot be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    spec: str  # as given
    reference: str  # module:attribute
    distribution: str  # "" for the standard library
    runs_on: Callable[[], str] | None = None  # see RUNS_ON

    @property
    def version(self) -> str:
        """What was checked: the release, and where its pools ran if that is not this process."""
        where = f" on {self.where()}" if self.runs_on is not None else ""
        if not self.distribution:
            import platform

            return f"Python {platform.python_version()}{where}"
        try:
            return f"{self.distribution} {importlib.metadata.version(self.distribution)}{where}"
        except importlib.metadata.PackageNotFoundError:
            return f"{self.distribution} (version unknown){where}"

    def where(self) -> str:
        """Where the target's pools run; TargetUnavailable, saying how to start it, if it is not there."""
        assert self.runs_on is not None
        try:
            return self.runs_on()
        except peers.ClusterUnavailable as error:
            raise TargetUnavailable(f"{self.spec}: {error}") from None

    def load(self) -> PoolFactory:
        if self.runs_on is not None:
            self.where()  # before the import: without its service the target cannot run at all
        module_name, _, attribute = self.reference.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            hint = f" (pip install {self.distribution})" if self.distribution else ""
            raise TargetUnavailable(f"{self.spec}: cannot import {module_name}: {error}{hint}") from None
        try:
            factory: PoolFactory = getattr(module, attribute)
        except AttributeError:
            raise TargetUnavailable(f"{self.spec}: {module_name} has no attribute {attribute!r}") from None
        if not callable(factory):
            raise TargetUnavailable(f"{self.spec}: {self.reference} is not callable")
        return factory


def parse(spec: str) -> Target:
    """A Target from a built-in name or `module:attribute`."""
    if spec in BUILTIN:
        reference, distribution = BUILTIN[spec]
        return Target(spec, reference, distribution, RUNS_ON.get(spec))
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        names = ", ".join(BUILTIN)
        raise TargetUnavailable(f"{spec!r} is neither module:attribute nor one of: {names}")
    top = module_name.split(".")[0]
    return Target(spec, spec, "" if top in sys.stdlib_module_names else top)
