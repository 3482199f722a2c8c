"""docs/strategies/catalogue.md lists every strategy the core and the bundled plugins register, each
in a table row of its own, and names no strategy that is not registered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nnactive_core.plugins import registry

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "strategies" / "catalogue.md"
BUNDLED = {
    "nnactive-core",
    *(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists()),
}
EXAMPLE = "nnactive-least-confidence"
ROW_NAME = re.compile(r"^\| `([^`]+)` \|", re.MULTILINE)


def catalogue_names() -> list[str]:
    return ROW_NAME.findall(CATALOGUE.read_text(encoding="utf-8"))


def registered_strategies() -> dict[str, str]:
    """Strategy name -> distribution, for every installed distribution."""
    plugins = registry()
    return {name: plugins.owner("strategy", name).name for name in plugins.names("strategy")}


def test_every_bundled_distribution_registers_strategies():
    """Without the bundled plugins installed the next test would pass on the core's strategies alone."""
    owners = set(registered_strategies().values())
    strategy_plugins = {"nnactive-core", "nnactive-strategies-bald", "nnactive-random-fg"}
    assert strategy_plugins <= owners, f"not installed: {sorted(strategy_plugins - owners)}"
    assert strategy_plugins <= BUNDLED


def test_every_registered_strategy_has_a_row():
    rows = catalogue_names()
    missing = [
        f"{name} ({owner})"
        for name, owner in registered_strategies().items()
        if owner in BUNDLED | {EXAMPLE} and name not in rows
    ]
    assert not missing, f"{CATALOGUE.relative_to(ROOT)} lacks registered strategies: {', '.join(missing)}"


def test_no_row_twice():
    rows = catalogue_names()
    assert len(rows) == len(set(rows)), sorted({name for name in rows if rows.count(name) > 1})


def test_every_row_is_registered_where_its_distribution_is_installed():
    registered = registered_strategies()
    installed = set(registered.values())
    row_owner = dict(re.findall(r"^\| `([^`]+)` \| ([\w-]+)", CATALOGUE.read_text(encoding="utf-8"), re.M))
    stale = [name for name, owner in row_owner.items() if owner in installed and name not in registered]
    assert not stale, f"{CATALOGUE.relative_to(ROOT)} lists strategies nobody registers: {stale}"
    assert set(row_owner.values()) <= BUNDLED | {EXAMPLE}
