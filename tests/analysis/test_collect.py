import json
import math

import pytest
from analysis.fake_results import BASE, fake_experiment

from nnactive_core.analysis.collect import (
    BUDGET,
    FG_PERCENT,
    MEAN_DICE,
    dice_columns,
    find_experiments,
    read_experiment,
    results_table,
)


def test_reads_dice_budget_and_costs(tmp_path):
    folder = fake_experiment(tmp_path, 1, "random", 7, [0.3, 0.5], [10, 25], fg_voxels=[100, 500])
    experiment = read_experiment(folder)
    assert experiment.finished and experiment.problems == ()
    assert experiment.label_names == {"0": "background", "1": "liver", "2": "tumour"}
    table = results_table([experiment])
    assert table[BUDGET].tolist() == [10, 25]
    assert table[MEAN_DICE].tolist() == [0.3, 0.5]
    assert table["dice_liver"].tolist() == pytest.approx([0.35, 0.55])
    assert table[FG_PERCENT].tolist() == pytest.approx([5.0, 25.0])
    assert table["pct_voxels"].tolist() == pytest.approx([10.0, 25.0])
    assert dice_columns(table) == [MEAN_DICE, "dice_liver", "dice_tumour"]
    assert set(table["seed"]) == {7} and set(table["strategy"]) == {"random"}


def test_budget_from_loop_files_when_costs_missing(tmp_path):
    folder = fake_experiment(tmp_path, 1, "random", 1, [0.3, 0.5, 0.6], [10, 30, 35], with_costs=False)
    experiment = read_experiment(folder)
    assert [loop.budget for loop in experiment.loops] == [10, 30, 35]
    assert any("no costs.json" in p for p in experiment.problems)
    assert FG_PERCENT not in results_table([experiment]).columns


def test_unfinished_and_missing_files_are_reported(tmp_path):
    folder = fake_experiment(
        tmp_path,
        1,
        "random",
        1,
        [0.3, 0.5],
        [10, 20],
        finished=False,
        query_steps=4,
        with_costs=False,
        with_loop_files=False,
    )
    (folder / "loop_001" / "summary.json").unlink()
    experiment = read_experiment(folder)
    problems = "\n".join(experiment.problems)
    assert "unfinished" in problems
    assert "loop_001: no summary.json" in problems
    assert "budget unknown" in problems
    assert "loops without results: loop_002, loop_003" in problems
    assert results_table([experiment])[BUDGET].tolist() == [], "no row without a known budget"


def test_raw_folder_found_without_paths_json(tmp_path):
    folder = fake_experiment(
        tmp_path, 1, "random", 1, [0.3, 0.5], [10, 20], with_paths=False, with_costs=False
    )
    experiment = read_experiment(folder)
    assert experiment.raw_folder == tmp_path / BASE / "nnUNet_raw" / folder.name
    assert [loop.budget for loop in experiment.loops] == [10, 20]


def test_find_experiments_follows_symlinks_once(tmp_path):
    first = fake_experiment(tmp_path / "a", 1, "random", 1, [0.3], [10])
    second = fake_experiment(tmp_path / "b", 2, "random", 2, [0.3], [10])
    (tmp_path / "a" / "link").symlink_to(tmp_path / "b")
    found = find_experiments(tmp_path / "a")
    assert {p.resolve() for p in found} == {first.resolve(), second.resolve()}
    assert find_experiments(first) == [first]


def test_unreadable_config_names_file(tmp_path):
    folder = fake_experiment(tmp_path, 1, "random", 1, [0.3], [10])
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json"):
        read_experiment(folder)


def test_nan_dice_kept(tmp_path):
    folder = fake_experiment(tmp_path, 1, "random", 1, [0.3, 0.4], [10, 20])
    summary = folder / "loop_001" / "summary.json"
    payload = json.loads(summary.read_text())
    payload["mean"]["2"]["Dice"] = None
    summary.write_text(json.dumps(payload))
    table = results_table([read_experiment(folder)])
    assert math.isnan(table["dice_tumour"].iloc[1])
