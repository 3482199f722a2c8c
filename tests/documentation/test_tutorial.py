"""docs/tutorial.md, run for real: every block of the page, in order, in one shell session in an empty
folder (so the tutorial's `export` and `cd` hold for what follows). Shell blocks run as written,
Python blocks through ``python``, and a block marked ``<!-- file: PATH -->`` is written to PATH. The
plugin the tutorial installs goes into a throwaway venv layered over this one, never into the
environment running the tests. One short nnU-Net experiment (two loops, tiny training)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from documentation.blocks import ROOT, blocks

pytestmark = [pytest.mark.docs, pytest.mark.e2e]

TUTORIAL = ROOT / "docs" / "tutorial.md"
TIMEOUT = 1500
EXPERIMENT = "Spheres__patch-8_8_8__sb-random-label2-all-classes__sbs-10__qs-10__unc-margin__seed-1"


def tutorial_script() -> str:
    """The page as one bash script; each block announces its line, so a failure names it."""
    lines = ["set -euo pipefail"]
    for block in blocks(TUTORIAL):
        if block.file is None and block.language not in {"bash", "python"}:
            continue  # shown output or a file's content without a place: nothing to run
        lines.append(f"echo {shlex.quote(f'>>> {block.where}')} >&2")
        delimiter = "NNACTIVE_TUTORIAL_BLOCK"
        assert delimiter not in block.text
        if block.file is not None:
            lines += [
                f'mkdir -p "$(dirname {shlex.quote(block.file)})"',
                f"cat > {shlex.quote(block.file)} <<'{delimiter}'",
            ]
            lines += [block.text.rstrip("\n"), delimiter] if block.text else [delimiter]
        elif block.language == "python":
            lines += [f"python - <<'{delimiter}'", block.text.rstrip("\n"), delimiter]
        else:
            lines.append(block.text)
    return "\n".join(lines) + "\n"


def layered_venv(folder: Path) -> Path:
    """A venv that sees every package of this environment (through a .pth that adds its site-packages,
    editable installs included) and installs into its own: ``pip``, ``python`` and ``nnactive`` in its
    ``bin`` are the tutorial's."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    outer = sysconfig.get_paths()["purelib"]
    Path(purelib, "outer_environment.pth").write_text(f"import site; site.addsitedir({outer!r})\n")
    for name, module in (("pip", "pip._internal.cli.main"), ("nnactive", "nnactive_core.cli.main")):
        script = folder / "bin" / name
        # As pip writes console scripts: nnU-Net's spawned workers import the main module again, and
        # must not run the command a second time.
        script.write_text(
            f"#!{python}\nimport sys\nfrom {module} import main\n\n"
            "if __name__ == '__main__':\n    sys.exit(main())\n"
        )
        script.chmod(0o755)
    return folder / "bin"


@pytest.fixture(scope="module")
def tutorial_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("tutorial")
    bin_folder = layered_venv(base / "venv")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("nnActive_")}
    environment["PATH"] = f"{bin_folder}{os.pathsep}{environment['PATH']}"
    environment.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        ["bash", "-c", tutorial_script()],
        cwd=base,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, (
        f"docs/tutorial.md failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
    )
    return base / "tutorial", result


def test_the_plugin_is_found_installed_and_passes_its_contract(tutorial_run):
    _, result = tutorial_run
    assert "margin" in result.stdout
    assert "nnactive-margin" in result.stdout
    assert " passed" in result.stdout and " failed" not in result.stdout


def test_the_experiment_ran_its_loops_with_the_plugin(tutorial_run):
    folder, _ = tutorial_run
    results = folder / "results" / "Dataset801_Spheres" / "nnActive_results"
    (experiment,) = [path for path in results.iterdir() if path.name.endswith(EXPERIMENT)]
    config = json.loads((experiment / "config.json").read_text())
    assert config["strategy"] == "margin"
    assert json.loads((experiment / "state.json").read_text())
    summaries = sorted(experiment.glob("loop_*/summary.json"))
    assert len(summaries) == 2
    query = json.loads((experiment / "loop_000" / "query.json").read_text())
    assert query, "the margin query selected nothing"
    versions = json.loads((experiment / "versions.json").read_text())
    assert "nnactive-margin" in json.dumps(versions)


def test_status_and_analysis_show_the_experiment(tutorial_run):
    folder, result = tutorial_run
    assert EXPERIMENT in result.stdout
    assert (folder / "analysis" / "summary.txt").is_file()
    assert "margin" in (folder / "analysis" / "summary.txt").read_text()
    assert list((folder / "pictures").rglob("*.png")), "visualize-queries drew no picture"
