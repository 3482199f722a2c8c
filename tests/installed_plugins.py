"""Build throwaway plugin distributions and install them for real (pip --target), so the registry
reads their entry points from installed metadata, exactly as for a plugin from PyPI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "{version}"

[project.entry-points.nnactive]
{entry} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]
"""

STRATEGY_PLUGIN = """\
from nnactive_core import hookimpl
from nnactive_core.strategies.api import PlacementStrategy


class Fixed(PlacementStrategy):
    name = "{strategy}"
    description = "Test strategy from {dist}."


@hookimpl
def nnactive_register_strategies(register):
    register(Fixed())
"""

BROKEN_PLUGIN = """\
import a_module_that_does_not_exist  # noqa: F401
"""

INVALID_PLUGIN = """\
from nnactive_core import hookimpl


@hookimpl
def nnactive_register_strategies(register):
    register(object())
"""


def install_plugin(target: Path, work: Path, dist: str, source: str, version: str = "1.2.3") -> None:
    module = dist.replace("-", "_")
    project = work / dist
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        PYPROJECT.format(dist=dist, version=version, entry=dist, module=module)
    )
    (project / f"{module}.py").write_text(textwrap.dedent(source))
    install_project(target, project)


def install_project(target: Path, project: Path) -> None:
    """Build and install the project folder ``project`` into ``target``."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(project),
        ],
        check=True,
        capture_output=True,
    )


def run_nnactive(args: list[str], *plugin_dirs: Path, **env: str) -> subprocess.CompletedProcess:
    """Run the real console entry point in a fresh interpreter that sees ``plugin_dirs``."""
    environment = {**os.environ, **env}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(p) for p in plugin_dirs] + [environment.get("PYTHONPATH", "")]
    )
    return subprocess.run(
        [sys.executable, "-c", "from nnactive_core.cli.main import cli; cli()", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
