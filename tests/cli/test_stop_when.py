"""``--stop-when`` through click (nnU-Net faked): a bad rule, a stopped run, its resume and status."""

import json

import pytest
from click.testing import CliRunner
from experiment.fake_nnunet_steps import SMALL_DEMO

from nnactive_core.cli.main import cli
from nnactive_core.experiment.demo import DEMO_DATASET
from nnactive_core.experiment.layout import Roots, list_experiments

SMALL = [
    "--dataset", DEMO_DATASET, "--dataset-adapter", "demo", "--strategy", "random", "--patch-size", "4",
    "--query-size", "10", "--loops", "4", "--folds", "2", "--profile", "tiny",
    *[f"--dataset-option={k}={v}" for k, v in SMALL_DEMO.items()],
]  # fmt: skip


@pytest.fixture
def env(tmp_path, monkeypatch):
    for name in ("nnActive_raw", "nnActive_data", "nnActive_results"):
        monkeypatch.setenv(name, str(tmp_path / name))
    return tmp_path


def invoke(*arguments):
    return CliRunner().invoke(cli, list(arguments))


def test_a_bad_rule_is_one_line_naming_the_option(env):
    result = invoke("run", *SMALL, "--stop-when", "stabel")
    assert result.exit_code == 2
    assert "Invalid value for '--stop-when': 'stabel' is not a stopping rule" in result.output
    assert "Traceback" not in result.output and not list_experiments(Roots.from_env())
    output = str(env / "out")
    result = invoke("analyze", "--results", str(env), "--output", output, "--stop-when", "stable:0.9,x")
    assert result.exit_code == 2 and "'--stop-when'" in result.output


def test_a_stopped_run_says_so_when_run_again_and_in_status(env, fake):
    result = invoke("run", *SMALL, "--stop-when", "stable:0.9,1")
    assert result.exit_code == 0, result.output
    (layout,) = list_experiments(Roots.from_env())
    assert json.loads(layout.config_file.read_text())["stop_when"] == "stable:0.9,1"
    assert f"experiment {layout.folder} stopped early after loop 1 (stable:" in result.output
    again = invoke("run", "--experiment", layout.folder)
    assert again.exit_code == 0 and "stopped early after loop 1" in again.output
    assert "loop 2 done" not in again.output
    status = invoke("status")
    assert status.exit_code == 0 and "1.000" in status.output  # the latest agreement
    assert all(word in status.output for word in ("stopped", "early", "by"))  # folded in the table
    (record,) = json.loads(invoke("status", "--json").output)
    assert record["state"] == "done" and record["loop"] == 1
    assert record["detail"] == "stopped early by stable:0.9,1"
    assert record["stopping"]["stopped"].startswith("stable:")
    assert record["stopping"]["agreement"] == 1.0 and record["stopping"]["held_loops"] == 1
    assert [entry["loop"] for entry in record["stopping"]["per_loop"]] == [0, 1]
