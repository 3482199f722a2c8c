"""``nnactive setup/run --experiment NAME`` for an experiment that does not exist yet set it up from
its name in the established format; the strategy is checked before anything else; ``status --json``
and the demo's closing lines, all with the nnU-Net side faked."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from experiment.fake_nnunet_steps import SMALL_DEMO

from nnactive_core.cli.main import cli
from nnactive_core.experiment import demo as demo_module
from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import Roots, list_experiments

NAME = "Demo__patch-4_4_4__sb-random__sbs-2__qs-2__unc-random__seed-5"


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def roots(demo_roots) -> Roots:
    return demo_roots


def test_a_new_name_sets_the_experiment_up_and_options_add_what_it_does_not_say(roots, fake):
    result = invoke("run", "--experiment", NAME, "--loops", "2", "--folds", "2", "--profile", "tiny")
    assert result.exit_code == 0, result.output
    (layout,) = list_experiments(roots)
    assert layout.folder == f"Dataset001_{NAME}"
    config = ExperimentConfig.load(layout.results)
    assert config.name() == NAME and (config.query_steps, config.folds) == (2, 2)
    assert config.starting_budget_size is None  # sbs = qs: the default, as a run with options writes it
    again = invoke("run", "--experiment", NAME)
    assert again.exit_code == 0 and len(list_experiments(roots)) == 1


def test_a_budgeted_name_sets_up_a_budgeted_experiment(roots, fake):
    name = f"{NAME}__bm-foreground_voxels-qb60"
    result = invoke("run", "--experiment", name, "--loops", "2", "--folds", "2", "--profile", "tiny")
    assert result.exit_code == 0, result.output
    (layout,) = list_experiments(roots)
    config = ExperimentConfig.load(layout.results)
    assert (config.budget_metric, config.query_budget) == ("foreground_voxels", 60)
    budget = json.loads(layout.costs_file(1).read_text())["budget"]
    assert budget["planned"] == 60 and budget["charged"] <= 60  # random is priced at its measured cost


def test_an_unknown_budget_metric_is_one_line_naming_the_field(roots, fake):
    result = invoke("run", "--experiment", f"{NAME}__bm-nope-qb5", "--loops", "2", "--folds", "2")
    assert result.exit_code == 1
    assert "'budget_metric': no registered cost metric writes a column 'nope'" in result.output
    assert "Traceback" not in result.output


def test_options_the_name_gives_are_refused(roots, fake):
    result = invoke("setup", "--experiment", NAME, "--seed", "4", "--strategy", "random")
    assert result.exit_code == 2
    assert "the experiment name gives --strategy, --seed: leave them out" in result.output
    assert not list_experiments(roots)


def test_a_name_with_a_bad_part_or_an_unknown_strategy_writes_nothing(roots, fake):
    result = invoke("setup", "--experiment", NAME.replace("sbs-2", "sbs-two"))
    assert result.exit_code == 1 and "part 4 'sbs-two'" in result.output
    result = invoke("setup", "--experiment", NAME.replace("unc-random", "unc-pred_entrpy"))
    assert result.exit_code == 1 and "strategy 'pred_entrpy' is not recognized" in result.output
    assert not any(p.is_file() for p in (roots.results, roots.data) if p.exists())
    assert not list_experiments(roots)


def test_the_strategy_is_checked_before_the_dataset(roots):
    result = invoke("run", "--dataset", "NoSuchData", "--strategy", "randm", "--patch-size", "4")
    assert result.exit_code == 1
    assert "strategy 'randm' is not recognized; did you mean 'random'?" in result.output
    result = invoke("run", "--dataset", "NoSuchData", "--strategy", "random", "--starting-budget", "rand")
    assert (
        result.exit_code == 1 and "strategy 'rand' is not recognized; did you mean 'random'" in result.output
    )
    result = invoke("run", "--dataset", "NoSuchData", "--strategy", "random", "--patch-size", "4")
    assert result.exit_code == 1 and "no dataset with name 'NoSuchData'" in result.output


def test_patch_sizes_in_both_spellings_name_one_experiment(roots, fake):
    common = ["-d", "900", "--strategy", "random", "--starting-budget", "random", "--query-size", "2"]
    for spelling in (["4,6,8"], ["4", "6", "8"], ["4 6 8"]):
        result = invoke("setup", *common, "--patch-size", *spelling, "--folds", "2", "--profile", "tiny")
        assert result.exit_code == 0, result.output
    (layout,) = list_experiments(roots)
    assert ExperimentConfig.load(layout.results).patch_size == (4, 6, 8)


def test_status_json_has_one_record_per_experiment(roots, fake):
    assert json.loads(invoke("status", "--json").output) == []
    assert (
        invoke("run", "--experiment", NAME, "--loops", "2", "--folds", "2", "--profile", "tiny").exit_code
        == 0
    )
    created = invoke("setup", "--experiment", NAME.replace("seed-5", "seed-6"), "--folds", "2")
    assert created.exit_code == 0, created.output
    records = json.loads(invoke("status", "--json").output)
    done, new = records
    assert done["experiment"] == f"Dataset001_{NAME}" and done["name"] == NAME
    assert (done["state"], done["loop"], done["loops"], done["step"]) == ("done", 1, 2, "done")
    assert done["budget"]["patches"] == 4 and done["budget_loop"] == 1
    assert done["mean_dice"] == pytest.approx(0.04) and done["dice_loop"] == 1
    assert done["warnings"] == [] and done["base_dataset"] == "Dataset900_Demo"
    assert (new["state"], new["loop"], new["loops"], new["step"]) == ("not started", 0, 5, "preprocess")
    assert (new["budget"]["patches"], new["budget_loop"], new["mean_dice"]) == (2, 0, None)
    only = json.loads(invoke("status", "--json", "-e", NAME).output)
    assert only == [done]


def test_the_demo_prints_the_exports_the_summary_and_every_plot(tmp_path, fake, monkeypatch):
    for name in ("nnActive_raw", "nnActive_data", "nnActive_results"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(demo_module, "DEMO_DATA", dict(SMALL_DEMO))
    monkeypatch.setitem(demo_module.DEMO_SETTINGS, "patch_size", (4, 4, 4))
    monkeypatch.setitem(demo_module.DEMO_SETTINGS, "query_size", 4)
    monkeypatch.setitem(demo_module.DEMO_SETTINGS, "starting_budget_size", 2)
    result = invoke("demo", "--output", tmp_path / "demo", "--loops", "2", "--strategy", "random")
    assert result.exit_code == 0, result.output
    roots = Roots.under(tmp_path / "demo")
    (layout,) = list_experiments(roots)
    lines = result.output.splitlines()
    assert f"experiment {layout.folder} finished; results in {layout.results}" in lines
    for name, value in roots.env().items():
        assert f"  export {name}={value}" in lines
    assert (
        f"  nnactive visualize-queries --experiment {layout.folder} --output {tmp_path / 'demo' / 'pictures'}"
        in lines
    )
    analysis = roots.analysis("Dataset900_Demo")
    assert f"summary: {analysis / 'summary.txt'}" in lines
    plots = [line.removeprefix("plot: ") for line in lines if line.startswith("plot: ")]
    assert sorted(plots) == sorted(str(p) for p in analysis.rglob("*.png")) and plots
    names = {p.rsplit("/", 1)[-1] for p in plots}
    assert {"dice_vs_budget.png", "dice_vs_annotation_seconds.png"} <= names  # patches beside hours
    for name, value in roots.env().items():
        monkeypatch.setenv(name, value)
    status = invoke("status", "--json")
    assert status.exit_code == 0 and [r["experiment"] for r in json.loads(status.output)] == [layout.folder]
    pictures = invoke(
        "visualize-queries", "--experiment", layout.folder, "--output", tmp_path / "demo" / "pictures"
    )
    assert pictures.exit_code == 0, pictures.output


def test_a_warm_started_snapshot_experiment_is_set_up_from_its_name_and_by_options(roots, fake):
    name = f"{NAME}__ws-4__ens-snapshots"
    result = invoke("setup", "--experiment", name, "--loops", "2", "--folds", "2", "--profile", "tiny")
    assert result.exit_code == 0, result.output
    (layout,) = list_experiments(roots)
    config = ExperimentConfig.load(layout.results)
    assert (config.warm_start, config.ensemble, config.name()) == (True, "snapshots", name)
    refused = invoke("setup", "--experiment", f"{NAME}__ws-4", "--warm-start")
    assert refused.exit_code == 2 and "the experiment name gives --warm-start" in refused.output
    options = ["-d", "900", "--strategy", "random", "--starting-budget", "random", "--query-size", "2"]
    result = invoke(
        "setup",
        *options,
        "--patch-size",
        "4",
        "--folds",
        "2",
        "--profile",
        "tiny",
        "--warm-start",
        "--train-option",
        "warm_epochs=5",
    )
    assert result.exit_code == 0, result.output
    assert any(layout.name.endswith("__seed-12345__ws-5") for layout in list_experiments(roots))
