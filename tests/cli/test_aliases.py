"""The established nnActive's command names and option names work as hidden aliases, each doing
what the nnactive command it maps to does; the migration page lists every one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from analysis.fake_results import two_by_two
from click.testing import CliRunner

from nnactive_core.cli.main import ALIASES, cli
from nnactive_core.datasets.demo import DemoParameters, build_demo_dataset
from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import Roots, list_experiments
from nnactive_core.experiment.state import load_state

MIGRATION_PAGE = Path(__file__).parents[2] / "docs" / "coming-from-nnactive.md"
NAME = "Demo__patch-4_4_4__sb-random__sbs-3__qs-2__unc-random__seed-7"


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def roots(demo_roots) -> Roots:
    return demo_roots


def test_aliases_are_hidden_from_help_and_documented():
    listed = invoke("--help").output
    page = MIGRATION_PAGE.read_text()
    for alias in ALIASES:
        assert alias not in listed
        assert f"`{alias}" in page, f"{alias} missing from {MIGRATION_PAGE.name}"
        command = cli.get_command(None, alias)
        for option in (o for p in command.params for o in p.opts if o.startswith("--") and o != "--help"):
            if option.count("_"):
                assert option in page, f"{alias} {option} missing from {MIGRATION_PAGE.name}"


def test_setup_experiment_and_run_experiment_take_an_established_name(roots, fake):
    result = invoke(
        "setup_experiment", "--experiment", NAME, "--loops", "2", "--folds", "2", "--profile", "tiny"
    )
    assert result.exit_code == 0, result.output
    (layout,) = list_experiments(roots)
    assert layout.name == NAME and load_state(layout.results).step == "preprocess"
    config = ExperimentConfig.load(layout.results)
    assert (config.dataset, config.patch_size, config.starting_budget, config.sbs) == (
        "Dataset900_Demo",
        (4, 4, 4),
        "random",
        3,
    )
    assert (config.query_size, config.strategy, config.seed, config.query_steps) == (2, "random", 7, 2)
    result = invoke("run_experiment", "--experiment", NAME)
    assert result.exit_code == 0, result.output
    assert f"experiment {layout.folder} finished" in result.output


def test_analyze_experiments_maps_base_path_and_output_path(tmp_path):
    results = tmp_path / "results"
    two_by_two(results)
    out = tmp_path / "analysis"
    result = invoke(
        "analyze_experiments", "--base_path", results, "--raw_path", tmp_path, "--output_path", out
    )
    assert result.exit_code == 0, result.output
    assert f"main table: {out / 'summary.csv'}" in result.output and (out / "summary.json").is_file()


def test_visualize_queries_images_finds_the_experiment_by_its_raw_folder(roots, fake, tmp_path):
    assert (
        invoke(
            "run_experiment", "--experiment", NAME, "--loops", "2", "--folds", "2", "--profile", "tiny"
        ).exit_code
        == 0
    )
    (layout,) = list_experiments(roots)
    out = tmp_path / "pictures"
    result = invoke("visualize_queries_images", "--raw_folder", layout.raw, "--output_folder", out)
    assert result.exit_code == 0, result.output
    assert [line for line in result.output.splitlines() if line.startswith("overview: ")] == [
        f"overview: {out / 'overview-loop_000.png'}",
        f"overview: {out / 'overview-loop_001.png'}",
    ]


def test_init_create_val_split_takes_dataset_id_test_size_and_level_seperator(tmp_path, monkeypatch):
    raw = tmp_path / "raw" / "nnUNet_raw"
    build_demo_dataset(raw, DemoParameters(seed=1, n_cases=6, n_validation=0, size=16))
    monkeypatch.setenv("nnActive_raw", str(tmp_path / "raw"))
    grouped = invoke(
        "init_create_val_split", "--dataset_id", "900", "--test_size", "2", "--level_seperator", "_"
    )
    assert grouped.exit_code == 1 and "selects 2 of 1 patient groups" in grouped.output  # demo_000 -> demo
    result = invoke("init_create_val_split", "--dataset_id", "900", "--test_size", "2")
    assert result.exit_code == 0, result.output
    assert "split: " in result.output and "Dataset900_Demo (4 pool, 2 validation cases)" in result.output
    assert len(list((raw / "Dataset900_Demo" / "imagesVal").iterdir())) == 2


def test_init_resample_from_id_takes_dataset_id_workers_and_configuration(roots, monkeypatch):
    import nnactive_core.nnunet.resample as resample_module

    calls = []

    class Result:
        cases, spacing = 8, (1.0, 1.0, 1.0)

    def fake_resample(dataset_dir, plans, configuration, processes, progress):
        calls.append((dataset_dir, plans.name, configuration, processes))
        return Result()

    monkeypatch.setattr(resample_module, "resample_dataset", fake_resample)
    result = invoke(
        "init_resample_from_id", "--dataset_id", "900", "--workers", "3", "--configuration", "3d_lowres"
    )
    assert result.exit_code == 0, result.output
    assert calls == [(roots.base_raw("Dataset900_Demo"), "nnUNetPlans.json", "3d_lowres", 3)]
    shutil.rmtree(roots.base_raw("Dataset900_Demo"))
    result = invoke("init_resample_from_id", "--dataset_id", "900", "--workers", "3")
    assert result.exit_code == 1 and "no dataset with id 900" in result.output
