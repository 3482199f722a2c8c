"""What the analysis warns about and skips: recorded loop warnings, an undefined class, a poor
FG-efficiency fit, a setting with one strategy."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from analysis.fake_results import BASE, fake_experiment, two_by_two

from nnactive_core.analysis.report import POOR_FIT, analyze
from nnactive_core.experiment.layout import WARNINGS_FILE
from nnactive_core.experiment.loop_warnings import ABSENT, NO_FOREGROUND, LoopWarning, write_warnings

SLUG = "patch-10_10_10__sb-random__sbs-10__qs-10__steps-4__tr-tiny"


def _one_strategy(root, curves=((1, [0.3, 0.4, 0.5, 0.55]), (2, [0.32, 0.44, 0.5, 0.57]))):
    return [
        fake_experiment(root, number, "random", seed, dice, [10, 20, 30, 40])
        for number, (seed, dice) in enumerate(curves, start=1)
    ]


def test_recorded_loop_warnings_are_listed_by_experiment(tmp_path):
    folders = two_by_two(tmp_path / "results")
    folder = folders[("random", 1)]
    warning = LoopWarning(
        loop=1, kind=NO_FOREGROUND, classes=["tumour"], message="loop 1: no voxel of tumour: not learned"
    )
    write_warnings(folder / "loop_001" / WARNINGS_FILE, [warning])
    report = analyze(tmp_path / "results", tmp_path / "out")
    assert report.warnings == (f"{folder.name}: loop 1: no voxel of tumour: not learned",)
    assert json.loads((tmp_path / "out" / "warnings.json").read_text()) == [
        {
            "experiment": folder.name,
            "setting": None,
            "loop": 1,
            "kind": NO_FOREGROUND,
            "classes": ["tumour"],
            "message": warning.message,
        }
    ]
    assert (tmp_path / "out" / "warnings.txt").read_text() == report.warnings[0] + "\n"


def test_a_loop_with_an_undefined_class_counts_the_defined_ones(tmp_path):
    (first, _) = _one_strategy(tmp_path / "results")
    summary_file = first / "loop_002" / "summary.json"
    summary = json.loads(summary_file.read_text())
    summary["foreground_mean"]["Dice"] = math.nan
    summary["mean"]["2"]["Dice"] = math.nan
    summary_file.write_text(json.dumps(summary))
    message = "loop 2: tumour in no validation case: their Dice is undefined"
    write_warnings(
        first / "loop_002" / WARNINGS_FILE,
        [LoopWarning(loop=2, kind=ABSENT, classes=["tumour"], message=message)],
    )
    report = analyze(tmp_path / "results", tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / BASE / SLUG / "results.csv")
    row = table[(table["seed"] == 1) & (table["loop"] == 2)].iloc[0]
    assert row["dice_mean"] == pytest.approx(summary["mean"]["1"]["Dice"])
    assert math.isnan(row["dice_tumour"])
    assert report.warnings == (f"{first.name}: {message}",)


def test_one_strategy_has_no_ppm_and_says_why(tmp_path):
    _one_strategy(tmp_path / "results")
    report = analyze(tmp_path / "results", tmp_path / "out")
    setting = tmp_path / "out" / BASE / SLUG
    assert not list(setting.glob("ppm*")) and not list((tmp_path / "out").rglob("ppm_merged*"))
    assert (
        "no pairwise penalty matrix: one strategy (random), nothing to compare" in report.missing.read_text()
    )
    summary = pd.read_csv(report.main_table)
    assert summary["ppm_loss_rate"].isna().all() and summary["ppm_win_rate"].isna().all()
    assert report.warnings == ()
    assert (tmp_path / "out" / "warnings.txt").read_text() == "no warnings\n"


def test_a_poor_fg_efficiency_fit_is_a_warning(tmp_path):
    # Dice that jumps up and down with the foreground share: the saturating model cannot follow it
    _one_strategy(tmp_path / "results", curves=((1, [0.3, 0.7, 0.35, 0.72]), (2, [0.32, 0.36, 0.7, 0.34])))
    report = analyze(tmp_path / "results", tmp_path / "out")
    fits = pd.read_csv(tmp_path / "out" / BASE / SLUG / "fg_efficiency.csv")
    assert bool(fits["poor_fit"].iloc[0])
    (warning,) = json.loads((tmp_path / "out" / "warnings.json").read_text())
    assert warning["kind"] == POOR_FIT and warning["experiment"] is None
    assert warning["setting"] in report.warnings[0]
    assert f"FG efficiency of random: poor fit: R² = {fits['r2'].iloc[0]:.2f}" in warning["message"]
