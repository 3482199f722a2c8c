"""Dice against a recorded cost: the common cost grid, AUBC and ranking at equal cost, budget gaps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from analysis.fake_results import fake_experiment

from nnactive_core.analysis import cost_axis
from nnactive_core.analysis.collect import read_experiment, results_table
from nnactive_core.analysis.report import AnalysisOptions, analyze

BUDGETS = [10, 20, 30, 40]
RUNS = {
    # (strategy, seed): (Dice per loop, cumulative foreground voxels per loop)
    ("cheap", 1): ([0.3, 0.5, 0.6, 0.7], [100, 200, 300, 400]),
    ("cheap", 2): ([0.3, 0.5, 0.6, 0.7], [100, 220, 320, 440]),
    ("costly", 1): ([0.3, 0.6, 0.7, 0.8], [100, 400, 700, 1000]),
    ("costly", 2): ([0.3, 0.6, 0.7, 0.8], [100, 400, 700, 1000]),
}


def experiments(root):
    return [
        fake_experiment(root, number, strategy, seed, dice, BUDGETS, fg_voxels=fg)
        for number, ((strategy, seed), (dice, fg)) in enumerate(RUNS.items(), start=1)
    ]


def test_runs_are_interpolated_onto_the_costs_every_run_covers(tmp_path):
    table = results_table([read_experiment(folder) for folder in experiments(tmp_path)])
    points = cost_axis.interpolated(table, "foreground_voxels")
    grid = sorted(points["cost"].unique())
    assert grid[0] == 100 and grid[-1] == 400 and len(grid) == cost_axis.GRID_POINTS
    at_400 = points[points["cost"] == 400].set_index(["strategy", "seed"])["dice_mean"]
    assert at_400[("cheap", 1)] == pytest.approx(0.7)
    assert at_400[("cheap", 2)] == pytest.approx(0.6 + 0.1 * 80 / 120)
    assert at_400[("costly", 1)] == pytest.approx(0.6)


def test_at_equal_cost_the_cheaper_strategy_ranks_first(tmp_path):
    # per patch "costly" wins at every loop; per foreground voxel "cheap" does
    table = results_table([read_experiment(folder) for folder in experiments(tmp_path)])
    ranking = cost_axis.equal_cost_ranking(
        cost_axis.interpolated(table, "foreground_voxels"), "foreground_voxels"
    )
    assert ranking["strategy"].tolist() == ["cheap", "costly"]
    assert ranking["rank"].tolist() == [1, 2]
    costly = ranking.set_index("strategy").loc["costly"]
    assert costly["final_foreground_voxels_mean"] == pytest.approx(0.6)
    assert costly["aubc_foreground_voxels_mean"] == pytest.approx(np.trapezoid([0.3, 0.6], [0, 1]), abs=1e-9)


def test_analyze_draws_dice_against_the_metric_and_notes_a_missing_one(tmp_path):
    folders = experiments(tmp_path / "results")
    for folder in folders:
        costs_file = folder / "loop_001" / "costs.json"
        costs = json.loads(costs_file.read_text())
        costs["budget"] = {
            "metric": "foreground_voxels",
            "planned": 120.0,
            "estimated": 90.0,
            "charged": 100.0,
            "carry": 20.0,
        }
        costs_file.write_text(json.dumps(costs))
    options = AnalysisOptions(x_metrics=("foreground_voxels", "annotation_seconds"))
    report = analyze(tmp_path / "results", tmp_path / "out", options)
    (setting,) = report.settings
    assert (setting / "dice_vs_foreground_voxels.png").is_file()
    ranking = (setting / "aubc_foreground_voxels.csv").read_text().splitlines()
    assert ranking[1].startswith("cheap,")
    gaps = cost_axis.budget_gaps([read_experiment(folder) for folder in folders])
    assert gaps["gap"].tolist() == [10.0] * 4 and (setting / "budget_gap.png").is_file()
    assert "no recorded cost 'annotation_seconds'" in report.missing.read_text()
