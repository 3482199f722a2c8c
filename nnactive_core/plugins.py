"""Plugin discovery and the registry of everything plugins provide.

Every entry point in the group ``nnactive`` is loaded in its own try/except. A plugin that fails to
import, registers an invalid object or a name another distribution already owns is recorded as a
:class:`PluginProblem` naming its distribution, and every other plugin keeps working. With
``NNACTIVE_STRICT_PLUGINS=1`` any problem is a hard error instead; ``NNACTIVE_DISABLE_PLUGINS=a,b``
skips distributions by name.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
from collections.abc import Callable
from functools import cache
from importlib import metadata
from types import ModuleType
from typing import Any

import attrs
import pluggy

from nnactive_core import hookspecs
from nnactive_core.hookspecs import PROJECT_NAME

CORE_DISTRIBUTION = "nnactive-core"
ESTABLISHED_DISTRIBUTION = "nnactive"
"""The established research code nnActive (MIC-DKFZ): its distribution also installs a command named
``nnactive``, so in one environment with nnactive-core whichever was installed last owns it."""
CORE_MODULE = "nnactive_core.builtins"
STRICT_ENV = "NNACTIVE_STRICT_PLUGINS"
DISABLE_ENV = "NNACTIVE_DISABLE_PLUGINS"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


class PluginError(Exception):
    """A plugin problem that stops the command (strict mode, or a name that is not recognized)."""


class UnknownNameError(PluginError, LookupError):
    pass


@attrs.frozen(kw_only=True)
class Kind:
    name: str
    hook: str
    base: str
    """Dotted path of the base class(es), ``|``-separated, that registered objects derive from;
    imported only when a plugin registers something, to keep start-up light."""
    required: tuple[str, ...]


KINDS = {
    kind.name: kind
    for kind in (
        Kind(
            name="strategy",
            hook="nnactive_register_strategies",
            base="nnactive_core.strategies.api.ScoreStrategy|PlacementStrategy",
            required=("name", "description"),
        ),
        Kind(
            name="cost metric",
            hook="nnactive_register_cost_metrics",
            base="nnactive_core.costs.api.CostMetric",
            required=("name", "description", "measure"),
        ),
        Kind(
            name="dataset adapter",
            hook="nnactive_register_dataset_adapters",
            base="nnactive_core.datasets.api.DatasetAdapter",
            required=("name", "description", "open"),
        ),
        Kind(
            name="launcher",
            hook="nnactive_register_launchers",
            base="nnactive_core.launchers.api.Launcher",
            required=("name", "description", "launch"),
        ),
        Kind(
            name="tracker",
            hook="nnactive_register_trackers",
            base="nnactive_core.tracking.Tracker",
            required=("name", "description", "start"),
        ),
    )
}


def _base_classes(kind: Kind) -> tuple[type, ...]:
    module_name, _, names = kind.base.rpartition(".")
    module = importlib.import_module(module_name)
    return tuple(getattr(module, name) for name in names.split("|"))


@attrs.frozen(kw_only=True)
class Distribution:
    name: str
    version: str


@attrs.frozen(kw_only=True)
class PluginProblem:
    distribution: Distribution
    error: str

    def __str__(self) -> str:
        return f"plugin {self.distribution.name} {self.distribution.version}: {self.error}"


@attrs.define
class Registry:
    """Registered objects by kind and name, with the distribution that provided each."""

    entries: dict[str, dict[str, tuple[Any, Distribution]]] = attrs.field(
        factory=lambda: {kind: {} for kind in KINDS}
    )
    distributions: list[Distribution] = attrs.field(factory=list)
    problems: list[PluginProblem] = attrs.field(factory=list)

    def get(self, kind: str, name: str) -> Any:
        try:
            return self.entries[kind][name][0]
        except KeyError:
            known = sorted(self.entries[kind])
            close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
            raise UnknownNameError(
                f"{kind} {name!r} is not recognized; {hint}installed: {', '.join(known) or 'none'}; "
                "is its plugin installed? (see `nnactive plugins`)"
            ) from None

    def owner(self, kind: str, name: str) -> Distribution:
        self.get(kind, name)
        return self.entries[kind][name][1]

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def strategy(self, name: str):
        return self.get("strategy", name)

    def provided_by(self, distribution: Distribution) -> dict[str, list[str]]:
        return {
            kind: sorted(name for name, (_, owner) in entries.items() if owner == distribution)
            for kind, entries in self.entries.items()
        }

    def versions(self) -> dict[str, str]:
        """Distribution name -> version of everything that registered something: recorded with
        every experiment."""
        return {d.name: d.version for d in self.distributions}


def _validate(kind: Kind, obj: Any) -> None:
    bases = _base_classes(kind)
    if not isinstance(obj, bases):
        expected = " or ".join(base.__name__ for base in bases)
        raise TypeError(f"registered {kind.name} {obj!r} is not an instance of {expected}")
    for attribute in kind.required:
        if not getattr(obj, attribute, None):
            raise TypeError(f"registered {kind.name} {obj!r} has no {attribute!r}")
    if not NAME_PATTERN.match(obj.name):
        raise ValueError(
            f"{kind.name} name {obj.name!r} is invalid: use lower-case letters, digits, '-' and '_'"
        )


def _collect(module: ModuleType, distribution: Distribution, registry: Registry) -> None:
    """Run one plugin's hooks into a staging area; commit only if all of it is valid, so a plugin is
    either fully available or reported, never half-registered."""
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(module)
    staged: list[tuple[Kind, Any]] = []
    for kind in KINDS.values():
        hook: Callable = getattr(manager.hook, kind.hook)
        hook(register=lambda obj, _kind=kind: staged.append((_kind, obj)))
    seen: dict[tuple[str, str], Any] = {}
    for kind, obj in staged:
        _validate(kind, obj)
        if (kind.name, obj.name) in seen:
            raise ValueError(f"registers {kind.name} {obj.name!r} twice")
        seen[(kind.name, obj.name)] = obj
        if obj.name in registry.entries[kind.name]:
            other = registry.entries[kind.name][obj.name][1]
            raise ValueError(
                f"{kind.name} {obj.name!r} is already registered by {other.name} {other.version}; "
                f"{distribution.name} {distribution.version} registers it too"
            )
    for kind, obj in staged:
        registry.entries[kind.name][obj.name] = (obj, distribution)
    registry.distributions.append(distribution)


def _entry_points() -> list[tuple[metadata.EntryPoint, Distribution]]:
    found = []
    for dist in metadata.distributions():
        for entry_point in dist.entry_points:
            if entry_point.group == PROJECT_NAME:
                found.append((entry_point, Distribution(name=dist.metadata["Name"], version=dist.version)))
    unique = {(ep.value, d.name): (ep, d) for ep, d in found}
    return sorted(unique.values(), key=lambda item: (item[1].name != CORE_DISTRIBUTION, item[1].name))


def _core_distribution() -> Distribution:
    from nnactive_core import __version__

    return Distribution(name=CORE_DISTRIBUTION, version=__version__)


def established_nnactive() -> Distribution | None:
    """The established nnActive distribution, if it is installed beside nnactive-core."""
    try:
        found = metadata.distribution(ESTABLISHED_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None
    return Distribution(name=found.metadata["Name"], version=found.version)


def _is_strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _disabled() -> set[str]:
    return {name.strip().lower() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}


def load_registry() -> Registry:
    """Discover and load all plugins. The core's built-ins always come first, so a plugin can never
    take over a built-in name."""
    registry = Registry()
    disabled = _disabled()
    sources = [(lambda: importlib.import_module(CORE_MODULE), _core_distribution())]
    for entry_point, distribution in _entry_points():
        if entry_point.value != CORE_MODULE and distribution.name.lower() not in disabled:
            sources.append((entry_point.load, distribution))
    for load, distribution in sources:
        try:
            _collect(load(), distribution, registry)
        except Exception as error:  # a broken plugin must never take the host down
            registry.problems.append(
                PluginProblem(distribution=distribution, error=f"{type(error).__name__}: {error}")
            )
    if registry.problems and _is_strict():
        raise PluginError("; ".join(str(problem) for problem in registry.problems))
    return registry


@cache
def registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    return load_registry()
