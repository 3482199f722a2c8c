"""``nnactive setup / run / status / demo`` through click, with the nnU-Net side faked."""

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from experiment.fake_nnunet_steps import SMALL_DEMO, FakeNnunetSteps

from nnactive_core.cli.demo import demo_roots
from nnactive_core.cli.experiment_options import build_config
from nnactive_core.cli.main import cli
from nnactive_core.experiment.demo import DEMO_DATASET, default_strategy, demo_config
from nnactive_core.experiment.layout import Roots, list_experiments
from nnactive_core.experiment.setup import check_config
from nnactive_core.plugins import registry

SMALL = [
    "--dataset", DEMO_DATASET, "--dataset-adapter", "demo", "--strategy", "random", "--patch-size", "4",
    "--query-size", "10", "--loops", "2", "--folds", "2", "--profile", "tiny",
    *[f"--dataset-option={k}={v}" for k, v in SMALL_DEMO.items()],
]  # fmt: skip
HOLD_LOCK = (
    "import sys, time; from nnactive_core.experiment.lock import ExperimentLock; "
    "ExperimentLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)"
)


@pytest.fixture
def env(tmp_path, monkeypatch):
    for name in ("nnActive_raw", "nnActive_data", "nnActive_results"):
        monkeypatch.setenv(name, str(tmp_path / name))
    return tmp_path


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return FakeNnunetSteps(root=tmp_path).install(monkeypatch)


def invoke(*arguments):
    return CliRunner().invoke(cli, list(arguments))


def test_missing_environment_variable_is_named(monkeypatch):
    for name in ("nnActive_raw", "nnActive_data", "nnActive_results"):
        monkeypatch.delenv(name, raising=False)
    result = invoke("run", *SMALL)
    assert result.exit_code == 1
    assert "nnActive_raw and nnActive_data not set" in result.output


def test_unknown_strategy_fails_before_writing_anything(env):
    result = invoke("run", *SMALL, "--strategy", "foo")
    assert result.exit_code == 1
    assert "strategy 'foo' is not recognized; installed: " in result.output
    assert "is its plugin installed? (see `nnactive plugins`)" in result.output
    assert "Traceback" not in result.output
    assert not any(p.is_file() for p in env.rglob("*"))


def test_missing_dataset_is_a_clear_error(env):
    result = invoke(
        "setup", "--dataset", "Dataset004_Hippocampus", "--strategy", "random", "--patch-size", "8"
    )
    assert result.exit_code == 1
    assert "base dataset Dataset004_Hippocampus not found" in result.output


def test_bad_values_name_the_field(env):
    result = invoke("setup", *SMALL, "--patch-size", "4,4")
    assert result.exit_code == 2 and "'--patch-size': expected Z,Y,X" in result.output
    result = invoke("setup", *SMALL, "--config", str(env / "c.json"))
    assert result.exit_code == 2 and "c.json: missing" in result.output
    (env / "c.json").write_text('{"patch_size": [4, 4]}')
    result = invoke("setup", *SMALL[:6], *SMALL[8:], "--config", str(env / "c.json"))
    assert result.exit_code == 1 and "'patch_size'" in result.output
    result = invoke("setup", *SMALL, "--train-option", "colour=1")
    assert result.exit_code == 1 and "colour" in result.output


def test_run_needs_an_existing_experiment_a_parsable_name_or_options(env, fake):
    result = invoke("run", "--experiment", "nothing")
    assert result.exit_code == 1 and "experiment 'nothing' not found" in result.output
    assert "part 2 is missing: expected 'patch-...'" in result.output
    result = invoke("run", "--dataset", DEMO_DATASET)
    assert result.exit_code == 2 and "missing --strategy" in result.output
    assert invoke("setup", *SMALL).exit_code == 0
    (layout,) = list_experiments(Roots.from_env())
    result = invoke("run", "--experiment", layout.folder, "--seed", "3")
    assert result.exit_code == 2
    assert f"--experiment {layout.folder} exists; it takes no config options (got --seed)" in result.output


def test_setup_run_and_status(env, fake):
    result = invoke("setup", *SMALL)
    assert result.exit_code == 0, result.output
    (layout,) = list_experiments(Roots.from_env())
    assert f"experiment {layout.folder}\n" in result.output and layout.folder.startswith("Dataset001_Demo__")
    assert f"nnactive run --experiment {layout.folder}" in result.output
    status = invoke("status")
    assert status.exit_code == 0 and "preprocess" in status.output and " 10 " in status.output
    result = invoke("run", "--experiment", layout.folder)
    assert result.exit_code == 0, result.output
    assert "loop 0 done (loops 0-1): budget 10 patches" in result.output
    assert "loop 1 done (loops 0-1): budget 20 patches" in result.output
    for loop in (0, 1):
        per_fold = json.loads(layout.timings_file(loop).read_text())["training_seconds_per_fold"]
        assert set(per_fold) == {"0", "1"}
        assert f"training {sum(per_fold.values()):.1f} s over 2 folds" in result.output
    assert f"experiment {layout.folder} finished" in result.output
    status = invoke("status", "--experiment", layout.name)
    assert status.exit_code == 0
    assert "done" in status.output and " 20 " in status.output and "0.2000" in status.output
    assert "1 of 0-1" in status.output


def test_the_short_form_sets_up_and_runs(env, fake):
    result = invoke("run", *SMALL)
    assert result.exit_code == 0, result.output
    assert [("train", loop, fold) for loop in (0, 1) for fold in (0, 1)] == [
        c for c in fake.calls if c[0] == "train"
    ]
    again = invoke("run", *SMALL)  # the same experiment, already finished
    assert again.exit_code == 0 and len(list_experiments(Roots.from_env())) == 1


def test_a_changed_version_stops_the_run_unless_allowed(env, fake):
    assert invoke("setup", *SMALL).exit_code == 0
    (layout,) = list_experiments(Roots.from_env())
    versions = json.loads((layout.results / "versions.json").read_text())
    versions["distributions"]["nnactive-core"] = "0.0.1"
    (layout.results / "versions.json").write_text(json.dumps(versions))
    result = invoke("run", "--experiment", layout.name)
    assert result.exit_code == 1
    assert "nnactive-core 0.0.1 -> " in result.output and "--allow-version-change" in result.output
    result = invoke("run", "--experiment", layout.name, "--allow-version-change")
    assert result.exit_code == 0, result.output


def test_a_second_live_run_is_refused(env, fake):
    assert invoke("setup", *SMALL).exit_code == 0
    (layout,) = list_experiments(Roots.from_env())
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(layout.results)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = invoke("run", "--experiment", layout.name)
        assert result.exit_code == 1 and f"is already running: pid {holder.pid}" in result.output
        assert "running" in invoke("status").output
    finally:
        holder.kill()
        holder.wait()
    assert invoke("run", "--experiment", layout.name).exit_code == 0  # the dead holder's lock is stale


def test_config_file_options_and_defaults_merge(tmp_path):
    config_file = tmp_path / "c.json"
    config_file.write_text(
        json.dumps(
            {"dataset": "Dataset004_H", "strategy": "random", "seed": 1, "training_overrides": {"epochs": 3}}
        )
    )
    options = {
        "config_file": config_file,
        "seed": 2,
        "patch_size": "4,8,8",
        "train_options": {"lr": "x", "iterations_per_epoch": 5},
        "dataset_options": {},
    }
    config = build_config(options, Roots.under(tmp_path))
    assert (config.seed, config.patch_size, config.query_size, config.query_steps) == (2, (4, 8, 8), 20, 5)
    assert config.training_overrides == {"epochs": 3, "lr": "x", "iterations_per_epoch": 5}


def test_patch_size_defaults_to_the_base_plans(tmp_path):
    roots = Roots.under(tmp_path)
    plans = roots.base_preprocessed("Dataset004_H") / "nnUNetPlans.json"
    plans.parent.mkdir(parents=True)
    plans.write_text(json.dumps({"configurations": {"3d_fullres": {"patch_size": [40, 56, 40]}}}))
    config = build_config({"dataset": "Dataset004_H", "strategy": "random"}, roots)
    assert config.patch_size == (40, 56, 40)
    with pytest.raises(Exception, match="missing --patch-size"):
        build_config({"dataset": "Dataset005_G", "strategy": "random"}, roots)


def test_demo_folders_and_config(tmp_path, monkeypatch):
    for name in ("nnActive_raw", "nnActive_data", "nnActive_results"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert demo_roots(None) == Roots.under(tmp_path / "nnactive_demo")
    assert demo_roots(tmp_path / "x") == Roots.under(tmp_path / "x")
    monkeypatch.setenv("nnActive_raw", str(tmp_path / "r"))
    monkeypatch.setenv("nnActive_data", str(tmp_path / "d"))
    assert demo_roots(None).data == tmp_path / "d"
    config = demo_config(loops=3)
    check_config(config, registry())
    expected = "pred_entropy" if "pred_entropy" in registry().names("strategy") else "random"
    assert config.strategy == default_strategy() == expected
    assert config.query_steps == 3 and config.training_profile == "tiny"
