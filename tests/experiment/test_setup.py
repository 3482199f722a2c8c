"""Setup without nnU-Net (the plans step is faked): checks before writing, folders, loop 0, labels."""

import json
import os

import pytest
from experiment.fake_nnunet_steps import FakeNnunetSteps, small_config

from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import Roots, list_experiments
from nnactive_core.experiment.setup import SetupError, check_config, setup_experiment
from nnactive_core.experiment.state import PREPROCESS, load_state
from nnactive_core.patches.patch import load_loop
from nnactive_core.plugins import UnknownNameError, registry


@pytest.fixture
def roots(tmp_path):
    return Roots.under(tmp_path)


def nothing_written(tmp_path) -> bool:
    return not any(p.is_file() for p in tmp_path.rglob("*"))


def test_unknown_strategy_is_refused_before_anything_is_written(tmp_path, roots):
    with pytest.raises(UnknownNameError, match=r"strategy 'foo' is not recognized; installed: .*random"):
        setup_experiment(small_config(strategy="foo"), roots)
    assert nothing_written(tmp_path)


def test_a_score_strategy_cannot_be_the_starting_budget(tmp_path, roots):
    if "pred_entropy" not in registry().names("strategy"):
        pytest.skip("nnactive-strategies-bald is not installed")
    with pytest.raises(Exception, match="starting budget 'pred_entropy'.*needs a trained model"):
        setup_experiment(small_config(starting_budget="pred_entropy"), roots)
    assert nothing_written(tmp_path)


def test_missing_base_dataset_names_the_folder(tmp_path, roots):
    config = small_config(dataset="Dataset004_Hippocampus", dataset_adapter="nnunet-raw", dataset_options={})
    with pytest.raises(SetupError, match=r"Dataset004_Hippocampus not found: .*raw/nnUNet_raw/Dataset004"):
        setup_experiment(config, roots)
    assert nothing_written(tmp_path)


def test_profile_problems_name_the_field():
    with pytest.raises(SetupError, match="training_overrides.*unknown training profile field.*colour"):
        check_config(small_config(training_overrides={"colour": 1}), registry())
    with pytest.raises(SetupError, match="unknown training profile 'huge'"):
        check_config(small_config(training_profile="huge"), registry())
    with pytest.raises(SetupError, match="'val_mirroring'.*trains without mirroring"):
        check_config(small_config(val_mirroring=True), registry())


def test_setup_writes_the_experiment(tmp_path, roots, monkeypatch):
    FakeNnunetSteps(root=tmp_path).install(monkeypatch)
    config = small_config()
    layout = setup_experiment(config, roots)
    assert layout.folder == f"Dataset001_{config.name()}"
    assert ExperimentConfig.load(layout.results) == config
    assert load_state(layout.results).step == PREPROCESS
    dataset_json = json.loads((layout.raw / "dataset.json").read_text())
    assert dataset_json["labels"]["ignore"] == 5 and dataset_json["name"] == layout.name
    for folder in ("imagesTr", "imagesVal", "labelsVal"):
        assert os.path.realpath(layout.raw / folder) == str(layout.base_raw / folder)
    assert len(load_loop(layout.raw / "loop_000.json")) == config.sbs
    assert len(list(layout.labels.iterdir())) == 6
    assert json.loads((layout.loop_results(0) / "costs.json").read_text())["cumulative"]["patches"] == 10
    splits = json.loads((layout.preprocessed / "splits_final.json").read_text())
    assert len(splits) == 2 and all(fold["val"] for fold in splits)
    assert json.loads((layout.results / "paths.json").read_text())["base_raw"] == str(layout.base_raw)
    assert "nnactive-core" in json.loads((layout.results / "versions.json").read_text())["distributions"]


def test_setting_up_again_reuses_the_experiment_and_another_config_is_refused(tmp_path, roots, monkeypatch):
    FakeNnunetSteps(root=tmp_path).install(monkeypatch)
    first = setup_experiment(small_config(), roots)
    loop0 = (first.raw / "loop_000.json").read_bytes()
    assert setup_experiment(small_config(), roots) == first
    assert (first.raw / "loop_000.json").read_bytes() == loop0
    with pytest.raises(SetupError, match="exists .* with another config: query_steps: 3 \\(stored\\) vs 4"):
        setup_experiment(small_config(query_steps=4), roots)
    second = setup_experiment(small_config(seed=9), roots)
    assert second.experiment_id == 2
    assert [e.folder for e in list_experiments(roots)] == [first.folder, second.folder]


def test_an_interrupted_setup_step_finishes_on_the_next_call(tmp_path, roots, monkeypatch):
    fake = FakeNnunetSteps(root=tmp_path).install(monkeypatch)

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr("nnactive_core.experiment.nnunet_steps.prepare_plans", broken)
    with pytest.raises(SetupError, match="setup of .*: OSError: disk full; details in .*log.txt"):
        setup_experiment(small_config(), roots)
    layout = list_experiments(roots)[0]
    assert "disk full" in load_state(layout.results).last_error
    monkeypatch.setattr("nnactive_core.experiment.nnunet_steps.prepare_plans", fake.prepare_plans)
    assert setup_experiment(small_config(), roots) == layout
    assert load_state(layout.results).step == PREPROCESS
