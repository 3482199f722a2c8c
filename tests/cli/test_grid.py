"""``nnactive grid run | status | retry`` end to end with the real CLI, the real ``local`` and
``commands`` launchers and a fake ``nnactive run`` (tests/launchers/fake_runner.py) that walks the
real state machine. Experiment creation is the fabricated one of tests/launchers/grid_fixtures.py,
so no dataset or nnU-Net is needed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from launchers.grid_fixtures import FAKE_RUN_COMMAND, config, create, fake_prepare

from nnactive_core.cli.main import cli
from nnactive_core.experiment.layout import Roots, find_experiment
from nnactive_core.experiment.lock import ExperimentLock
from nnactive_core.experiment.naming import strip_folder_prefix
from nnactive_core.experiment.state import State
from nnactive_core.launchers import grid as grid_module
from nnactive_core.launchers.local import LocalLauncher

GRID = """
[grid]
datasets = ["Dataset004_Hippocampus"]
strategies = ["random"]
query_sizes = [4]
seeds = [1, 2, 3, 4, 5]

[experiment]
patch_size = [4, 4, 4]
query_steps = 3
"""


@pytest.fixture
def roots(tmp_path, monkeypatch) -> Roots:
    roots = Roots.under(tmp_path / "nnactive")
    for key, value in roots.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.delenv("FAKE_FAIL", raising=False)
    monkeypatch.setattr(grid_module, "prepare_experiments", fake_prepare)
    monkeypatch.setattr(grid_module, "default_run_command", lambda: FAKE_RUN_COMMAND)
    return roots


@pytest.fixture
def grid_file(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def states(grid_file) -> dict[int, str]:
    result = invoke("grid", "status", str(grid_file), "--json")
    assert result.exit_code == 0, result.output
    return {int(r["name"].rsplit("-", 1)[1]): r["state"] for r in json.loads(result.output)}


def test_status_of_a_mixed_grid(roots, grid_file):
    create(roots, config(seed=1), State(loop=2, step="done"))
    running = create(roots, config(seed=2), State(loop=1, step="train"))
    create(roots, config(seed=3), State(loop=1, step="annotate", last_error="ValueError: bad patch\nmore"))
    create(roots, config(seed=4), State(loop=2, step="validate"))
    with ExperimentLock(running.results):
        result = invoke("grid", "status", str(grid_file))
        assert states(grid_file) == {1: "done", 2: "running", 3: "failed", 4: "stopped", 5: "not started"}
    assert result.exit_code == 0, result.output
    # created experiments show their folder's name, the one not set up yet the name it will get
    rows = {
        strip_folder_prefix(line.split()[1]): line for line in result.output.splitlines() if "__seed-" in line
    }
    assert set(rows) == {config(seed=seed).name() for seed in range(1, 6)}
    assert "Dataset001_" + config(seed=1).name() in rows[config(seed=1).name()]
    assert "2 of 0-2" in rows[config(seed=1).name()] and "done" in rows[config(seed=1).name()]
    assert "running" in rows[config(seed=2).name()] and "train" in rows[config(seed=2).name()]
    assert (
        "ValueError: bad patch" in rows[config(seed=3).name()] and "more" not in rows[config(seed=3).name()]
    )
    assert "5 experiments: 1 done, 1 running, 1 failed, 1 stopped, 1 not started" in result.output


def test_run_skips_done_and_failed_then_retry_fixes_the_failed(roots, grid_file, monkeypatch):
    create(roots, config(seed=1), State(loop=2, step="done"))
    create(roots, config(seed=2), State(loop=1, step="query", last_error="RuntimeError: earlier failure"))
    create(roots, config(seed=3), State(loop=1, step="preprocess"))
    monkeypatch.setenv("FAKE_FAIL", config(seed=5).name())

    result = invoke("grid", "run", str(grid_file), "--launcher", "local", "--option", "parallel=2")
    assert result.exit_code == 1
    assert "skipping 2 experiments: 1 done, 1 failed" in result.output
    assert "retry failed experiments with `nnactive grid retry --failed`" in result.output
    assert "1 of 3 experiment(s) failed" in result.output
    assert states(grid_file) == {1: "done", 2: "failed", 3: "done", 4: "done", 5: "failed"}
    log = (roots.results / "logs" / f"{config(seed=5).name()}.log").read_text()
    assert "RuntimeError: CUDA out of memory" in log

    monkeypatch.delenv("FAKE_FAIL")
    result = invoke("grid", "retry", str(grid_file), "--failed", "--launcher", "local")
    assert result.exit_code == 0, result.output
    assert states(grid_file) == {seed: "done" for seed in range(1, 6)}

    result = invoke("grid", "run", str(grid_file), "--launcher", "local")
    assert result.exit_code == 0
    assert "skipping 5 experiments: 5 done" in result.output and "nothing to launch" in result.output


def test_retry_without_a_grid_covers_all_experiments(roots, grid_file):
    create(roots, config(seed=1), State(loop=2, step="done"))
    create(roots, config(seed=2), State(loop=0, step="train", last_error="RuntimeError: out of memory"))
    create(
        roots,
        config(strategy="random-label2", seed=9),
        State(loop=1, step="query", last_error="OSError: disk"),
    )
    create(roots, config(seed=3), State(loop=1, step="train"))
    result = invoke("grid", "retry", "--failed", "--launcher", "local")
    assert result.exit_code == 0, result.output
    assert "skipping 2 experiments: 1 done, 1 stopped" in result.output
    statuses = {r["name"]: r["state"] for r in json.loads(invoke("grid", "status", "--json").output)}
    assert statuses == {
        config(seed=1).name(): "done",
        config(seed=2).name(): "done",
        config(strategy="random-label2", seed=9).name(): "done",
        config(seed=3).name(): "stopped",
    }


def test_run_never_touches_an_experiment_with_another_config(roots, grid_file, tmp_path):
    other = create(roots, config(seed=1, query_steps=5), State(loop=1, step="train"))
    out = tmp_path / "commands.txt"
    result = invoke("grid", "run", str(grid_file), "--launcher", "commands", "--option", f"out={out}")
    assert result.exit_code == 0, result.output
    assert (
        f"conflict: {config(seed=1).name()} exists with another query_steps ({other.results})"
        in result.output
    )
    assert len(out.read_text().splitlines()) == 4
    assert config(seed=1).name() not in out.read_text()


def test_commands_launcher_writes_runnable_lines(roots, tmp_path):
    out = tmp_path / "commands.txt"
    result = invoke(
        "grid",
        "run",
        "--dataset",
        "Dataset004_Hippocampus",
        "--strategy",
        "random",
        "--strategy",
        "random-label2",
        "--query-size",
        "4",
        "--seed",
        "1",
        "--set",
        "patch_size=4_4_4",
        "--set",
        "query_steps=3",
        "--launcher",
        "commands",
        "--option",
        f"out={out}",
    )
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 2
    names = [config(strategy=s).name() for s in ("random", "random-label2")]
    for line, name in zip(lines, names, strict=True):
        assert line.endswith(f"run --experiment {name}")
        subprocess.run(["bash", "-c", line], check=True, capture_output=True, env={"PATH": "/usr/bin:/bin"})
    result = invoke("grid", "status", "--json")
    assert {r["name"]: r["state"] for r in json.loads(result.output)} == {name: "done" for name in names}


def test_dry_run_creates_nothing(roots, grid_file):
    result = invoke("grid", "run", str(grid_file), "--launcher", "local", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would launch with local" in result.output
    assert result.output.count("__seed-") == 5
    assert find_experiment(roots, config(seed=1).name()) is None


def test_launcher_from_the_grid_file(roots, grid_file, tmp_path):
    out = tmp_path / "from-file.txt"
    grid_file.write_text(GRID + f'\n[launcher]\nname = "commands"\nout = "{out}"\n')
    result = invoke("grid", "run", str(grid_file))
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grid", "run", "GRID"], "Error: no launcher: pass --launcher NAME"),
        (["grid", "run", "GRID", "--launcher", "slurmish"], "Error: launcher 'slurmish' is not recognized"),
        (
            ["grid", "run", "GRID", "--launcher", "local", "--option", "nodes=3"],
            "Error: launcher 'local' does not accept option(s) nodes",
        ),
        (
            ["grid", "run", "GRID", "--launcher", "commands"],
            "launcher 'commands' needs option out",
        ),
        (["grid", "run", "--launcher", "local"], "Error: no grid: give a GRID.toml"),
        (["grid", "run", "missing.toml", "--launcher", "local"], "Error: grid file missing.toml:"),
        (
            ["grid", "status", "GRID", "--set", "query_steps=zero"],
            "'query_steps': must be a positive",
        ),
        (["grid", "retry", "GRID", "--launcher", "local"], "say what to retry: --failed and/or --stopped"),
    ],
)
def test_errors_are_one_line(roots, grid_file, args, message):
    result = invoke(*[str(grid_file) if arg == "GRID" else arg for arg in args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_environment_is_named(grid_file, monkeypatch):
    for name in ("nnActive_raw", "nnActive_data", "nnActive_results"):
        monkeypatch.delenv(name, raising=False)
    result = invoke("grid", "status", str(grid_file))
    assert result.exit_code == 1
    assert "nnActive_raw" in result.output and "not set" in result.output


def test_grid_help_stays_light():
    probe = (
        "import sys\nfrom nnactive_core.cli.main import cli\ntry:\n    cli(['grid', 'status', '--help'])\n"
        "except SystemExit:\n    pass\n"
        "heavy = ('torch', 'nnunetv2', 'SimpleITK', 'pandas')\n"
        "print('HEAVY:' + ','.join(m for m in heavy if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip().endswith("HEAVY:"), run.stdout


def test_run_leaves_alone_stopped_experiments_the_launcher_still_holds(roots, grid_file, monkeypatch):
    queued = create(roots, config(seed=2), State(loop=1, step="train"))
    create(roots, config(seed=3), State(loop=1, step="query"))
    asked = []

    def active_jobs(self, experiments, **options):
        asked.extend(experiments)
        return {queued.name: "slurm job 41 is PENDING"}

    monkeypatch.setattr(LocalLauncher, "active_jobs", active_jobs)
    result = invoke("grid", "run", str(grid_file), "--launcher", "local")
    assert result.exit_code == 0, result.output
    assert sorted(asked) == sorted([queued.name, config(seed=3).name()])  # only the stopped ones
    assert f"skipping {queued.name}: slurm job 41 is PENDING" in result.output
    assert states(grid_file) == {1: "done", 2: "stopped", 3: "done", 4: "done", 5: "done"}
