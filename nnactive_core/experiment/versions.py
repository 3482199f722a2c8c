"""``versions.json``: the versions of nnactive-core and of every plugin an experiment uses.

Results of a resumed experiment must come from the code that started it, so a changed version stops
the run unless the user allows it explicitly (``--allow-version-change``).
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from nnactive_core.experiment.layout import VERSIONS_FILE
from nnactive_core.io import JsonFileError, atomic_write_json, read_json
from nnactive_core.plugins import CORE_DISTRIBUTION, Registry

ENVIRONMENT_PACKAGES = ("nnunetv2", "torch", "numpy", "SimpleITK")


class VersionChangeError(RuntimeError):
    """A distribution the experiment uses changed version since the experiment started."""


def used_distributions(registry: Registry, uses: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Name -> version of nnactive-core and the owners of the ``(kind, name)`` objects used."""
    versions = {CORE_DISTRIBUTION: registry.versions().get(CORE_DISTRIBUTION, "")}
    for kind, name in uses:
        owner = registry.owner(kind, name)
        versions[owner.name] = owner.version
    return dict(sorted(versions.items()))


def _environment() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ENVIRONMENT_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def write_versions(folder: Path, distributions: dict[str, str], previous: dict | None = None) -> None:
    """Record the distributions (checked on resume) and the environment (for information). Earlier
    accepted version changes are kept in ``history``."""
    history = list((previous or {}).get("history", []))
    if previous and previous.get("distributions") != distributions:
        history.append(
            {"distributions": previous.get("distributions"), "environment": previous.get("environment")}
        )
    payload = {"distributions": distributions, "environment": _environment()}
    if history:
        payload["history"] = history
    atomic_write_json(Path(folder) / VERSIONS_FILE, payload)


def read_versions(folder: Path) -> dict | None:
    path = Path(folder) / VERSIONS_FILE
    if not path.exists():
        return None
    try:
        payload = read_json(path)
    except JsonFileError as error:
        raise VersionChangeError(str(error)) from None
    return payload if isinstance(payload, dict) else None


def version_changes(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    changes = []
    for name in sorted(set(recorded) | set(current)):
        before, now = recorded.get(name), current.get(name)
        if before != now:
            changes.append(f"{name} {before or '(not used)'} -> {now or '(not installed)'}")
    return changes


def check_versions(folder: Path, current: dict[str, str], allow_change: bool) -> None:
    """Write ``versions.json`` on first use; on resume compare and stop on a change unless allowed."""
    previous = read_versions(folder)
    if previous is None:
        write_versions(folder, current)
        return
    changes = version_changes(previous.get("distributions", {}), current)
    if changes and not allow_change:
        raise VersionChangeError(
            f"experiment {Path(folder).name} was started with other versions: {'; '.join(changes)}; "
            "resume with --allow-version-change to continue anyway (recorded in versions.json)"
        )
    if changes:
        write_versions(folder, current, previous)
