"""TARGET strings: `module:attribute`, or the name of a pool the oracle knows."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from dataclasses import dataclass

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


class TargetUnavailable(Exception):
    """The target cannot be loaded; the message says why and what to do."""


@dataclass(frozen=True)
class Target:
    spec: str  # as given
    reference: str  # module:attribute
    distribution: str  # "" for the standard library

    @property
    def version(self) -> str:
        if not self.distribution:
            import platform

            return f"Python {platform.python_version()}"
        try:
            return f"{self.distribution} {importlib.metadata.version(self.distribution)}"
        except importlib.metadata.PackageNotFoundError:
            return f"{self.distribution} (version unknown)"

    def load(self) -> PoolFactory:
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
        return Target(spec, reference, distribution)
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        names = ", ".join(BUILTIN)
        raise TargetUnavailable(f"{spec!r} is neither module:attribute nor one of: {names}")
    top = module_name.split(".")[0]
    return Target(spec, spec, "" if top in sys.stdlib_module_names else top)
