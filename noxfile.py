"""Sessions: tests (core + all plugins), plugin_tests (each plugin alone with the core), lint, demo,
bench. Every session pins torch in the same pip command as anything that depends on it, so pip never
swaps in a multi-GB CUDA build."""

import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
EXAMPLE_PLUGIN = "docs/examples/nnactive-least-confidence"
TORCH = "torch==2.13.0"

nox.options.sessions = ["lint", "tests", "plugin_tests"]
nox.options.reuse_existing_virtualenvs = True


def install_core(session: nox.Session, *plugin_folders: str) -> None:
    session.install(TORCH)
    session.install(TORCH, "-e", ".[test]", *[arg for folder in plugin_folders for arg in ("-e", folder)])


def plugin_folders() -> list[str]:
    return [f"plugins/{p}" for p in PLUGINS]


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: core and every plugin installed together. ``nox -s tests -- -m "not e2e"``
    runs the fast subset."""
    install_core(session, *plugin_folders())
    session.run("pytest", "tests", *[f"{folder}/tests" for folder in plugin_folders()], *session.posargs)


def without_slurm(arguments: list[str]) -> list[str]:
    """pytest arguments that also deselect the ``slurm`` tests, keeping any ``-m`` selection given."""
    arguments = list(arguments)
    if "-m" in arguments[:-1]:
        index = arguments.index("-m") + 1
        arguments[index] = f"({arguments[index]}) and not slurm"
        return arguments
    return ["-m", "not slurm", *arguments]


@nox.session
@nox.parametrize("folder", [*plugin_folders(), EXAMPLE_PLUGIN])
def plugin_tests(session: nox.Session, folder: str) -> None:
    """One plugin installed alone with the core, running its own tests (the documented example
    plugin included, so the docs stay true). The ``slurm`` tests, minutes on a real cluster, run
    once, in ``tests``."""
    install_core(session, folder)
    session.chdir(folder)
    session.run("pytest", "tests", *without_slurm(session.posargs))


def source_folders() -> list[str]:
    """Where the core, every plugin and the example plugin keep their packages."""
    return [str(ROOT), *(str(ROOT / folder / "src") for folder in (*plugin_folders(), EXAMPLE_PLUGIN))]


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff, and the import layers of docs/architecture.md (import-linter contracts in pyproject.toml).
    The contracts read the sources, so nothing heavy is installed: the packages are found on the path."""
    session.install("ruff", "import-linter")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports", env={"PYTHONPATH": os.pathsep.join(source_folders())})


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
