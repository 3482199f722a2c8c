"""Datasets are named the nnU-Net way in every command: ``-d 900``, ``900``, ``Dataset900_Demo`` and
``Demo`` resolve to the same base dataset in ``run``, ``setup``, ``grid`` and each ``data`` command;
an unknown or ambiguous name fails with one line listing the candidates."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from experiment.fake_nnunet_steps import FakeNnunetSteps

from nnactive_core.cli.main import cli
from nnactive_core.datasets.demo import DemoParameters, build_demo_dataset
from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import Roots, list_experiments

FORMS = (["900"], ["-d", "900"], ["Dataset900_Demo"], ["-d", "Demo"], ["demo"], ["-d", "0900"])
OPTION_FORMS = ("900", "0900", "Dataset900_Demo", "Demo")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    folder, _ = build_demo_dataset(
        tmp_path_factory.mktemp("template"), DemoParameters(seed=1, n_cases=6, n_validation=2, size=16)
    )
    return folder


@pytest.fixture
def roots(tmp_path, template, monkeypatch) -> Roots:
    roots = Roots.under(tmp_path)
    shutil.copytree(template, roots.base_raw(template.name))
    for key, value in roots.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("nnUNet_raw", raising=False)
    return roots


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("form", FORMS)
def test_data_check_split_plan_resample_and_derive_take_every_form(roots, form):
    dataset = roots.base_raw("Dataset900_Demo")
    result = invoke("data", "check", *form, "--level", "structure")
    assert result.exit_code == 0, result.output
    assert f"ok: {dataset} " in result.output
    result = invoke("data", "split", *form)
    assert result.exit_code == 0, result.output
    assert f"already split: {dataset} (6 pool, 2 validation cases)" in result.output
    plans = roots.base_preprocessed("Dataset900_Demo") / "nnUNetPlans.json"
    plans.parent.mkdir(parents=True)
    plans.write_text(json.dumps({"configurations": {"3d_fullres": {"patch_size": [8, 8, 8]}}}))
    result = invoke("data", "plan", *form)
    assert result.exit_code == 0 and f"already planned: {plans}" in result.output, result.output
    for name in ("imagesTr", "labelsTr", "imagesVal", "labelsVal"):
        shutil.copytree(dataset / name, dataset / f"{name}_original")
    result = invoke("data", "resample", *form)
    assert result.exit_code == 0 and f"already resampled: {dataset}" in result.output, result.output
    result = invoke("data", "derive", *form, "--target-id", "901", "--fraction", "0.5")
    assert result.exit_code == 0, result.output
    assert f"derived: {dataset.parent / 'Dataset901_Demo_small'}" in result.output


def test_a_path_still_works_and_nnunet_raw_is_searched_too(roots, monkeypatch, tmp_path):
    dataset = roots.base_raw("Dataset900_Demo")
    result = invoke("data", "check", str(dataset), "--level", "structure")
    assert result.exit_code == 0 and f"ok: {dataset} " in result.output, result.output
    monkeypatch.delenv("nnActive_raw")
    monkeypatch.setenv("nnUNet_raw", str(dataset.parent))
    result = invoke("data", "check", "-d", "900", "--level", "structure")
    assert result.exit_code == 0 and f"ok: {dataset} " in result.output, result.output


def test_unknown_and_ambiguous_names_list_the_candidates(roots):
    shutil.copytree(roots.base_raw("Dataset900_Demo"), roots.base_nnunet.raw / "Dataset902_Demo")
    result = invoke("data", "check", "Demo")
    assert result.exit_code == 1
    assert (
        f"dataset name 'Demo' is ambiguous in {roots.base_nnunet.raw}: Dataset900_Demo, Dataset902_Demo"
        in result.output
    )
    result = invoke("data", "check", "7")
    assert result.exit_code == 1
    assert (
        f"no dataset with id 7 in {roots.base_nnunet.raw}; datasets there: Dataset900_Demo, Dataset902_Demo"
        in (result.output)
    )
    shutil.rmtree(roots.base_nnunet.raw / "Dataset902_Demo")
    result = invoke("data", "check", "Dmeo")
    assert result.exit_code == 1 and "did you mean Dataset900_Demo?" in result.output
    result = invoke("data", "check", "900", "-d", "900")
    assert result.exit_code == 2 and "name the dataset once" in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return FakeNnunetSteps(root=tmp_path).install(monkeypatch)


SETUP = [
    "--strategy",
    "random",
    "--starting-budget",
    "random",
    "--patch-size",
    "4",
    "--query-size",
    "2",
    "--loops",
    "2",
    "--folds",
    "2",
]


@pytest.mark.parametrize("command", ["setup", "run"])
def test_setup_and_run_resolve_every_form_to_one_experiment(roots, fake, command):
    for form in OPTION_FORMS:
        result = invoke(command, "--dataset", form, *SETUP, "--profile", "tiny")
        assert result.exit_code == 0, result.output
    (layout,) = list_experiments(roots)
    assert ExperimentConfig.load(layout.results).dataset == "Dataset900_Demo"
    result = invoke(command, "-d", "Hippocampus", *SETUP)
    assert result.exit_code == 1
    assert "no dataset with name 'Hippocampus'" in result.output and "Dataset900_Demo" in result.output


def test_a_config_file_may_name_the_dataset_by_id(roots, fake, tmp_path):
    config = tmp_path / "experiment.toml"
    config.write_text(
        'dataset = 900\nstrategy = "random"\nstarting_budget = "random"\npatch_size = [4, 4, 4]\n'
        "query_size = 2\nfolds = 2\n"
    )
    result = invoke("setup", "--config", str(config), "--profile", "tiny")
    assert result.exit_code == 0, result.output
    (layout,) = list_experiments(roots)
    assert ExperimentConfig.load(layout.results).dataset == "Dataset900_Demo"


def test_grid_resolves_options_and_grid_files(roots, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        '[grid]\ndatasets = [900]\nstrategies = ["random"]\nquery_sizes = [2]\n'
        "[experiment]\npatch_size = [4, 4, 4]\n[dataset.Demo]\nquery_steps = 3\n"
    )
    records = json.loads(invoke("grid", "status", str(grid), "--json").output)
    assert [(r["base_dataset"], r["loops"]) for r in records] == [("Dataset900_Demo", 3)]
    for form in OPTION_FORMS:
        result = invoke(
            "grid",
            "status",
            "-d",
            form,
            "--strategy",
            "random",
            "--query-size",
            "2",
            "--set",
            "patch_size=4",
            "--set",
            "query_steps=2",
            "--json",
        )
        assert result.exit_code == 0, result.output
        assert [r["base_dataset"] for r in json.loads(result.output)] == ["Dataset900_Demo"]
    result = invoke("grid", "status", "-d", "12", "--strategy", "random", "--query-size", "2")
    assert result.exit_code == 1 and "no dataset with id 12" in result.output
