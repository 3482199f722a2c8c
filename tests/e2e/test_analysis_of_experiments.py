"""End to end: `nnactive analyze` and `nnactive visualize-queries` on real experiments (two
strategies, two seeds each), checked against the experiments' own result files."""

from __future__ import annotations

import math

import matplotlib.image
import pandas as pd
import pytest
from e2e.runs import SECOND_STRATEGY, STRATEGY, nnactive, read_json

from nnactive_core.experiment.layout import list_experiments

pytestmark = pytest.mark.e2e
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_valid_pngs(folder):
    pngs = sorted(folder.rglob("*.png"))
    assert pngs, f"no PNG under {folder}"
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_SIGNATURE, png
        image = matplotlib.image.imread(png)
        assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50, png
        assert image.std() > 0, f"{png} is blank"


@pytest.fixture(scope="module")
def analysis(e2e_grid, tmp_path_factory):
    output = tmp_path_factory.mktemp("analysis")
    result = nnactive(["analyze", "--results", str(e2e_grid.results), "--output", str(output)], e2e_grid)
    assert result.returncode == 0, result.stdout + result.stderr
    return output, result


def test_tables_match_the_experiments_result_files(e2e_grid, analysis):
    output, result = analysis
    assert str(output / "summary.csv") in result.stdout
    (results_csv,) = output.rglob("results.csv")
    table = pd.read_csv(results_csv)
    experiments = list_experiments(e2e_grid)
    assert sorted({(e.name.split("__unc-")[1]) for e in experiments}) == sorted(
        {f"{s}__seed-{seed}" for s in (STRATEGY, SECOND_STRATEGY) for seed in (7, 8)}
    )
    assert len(table) == 2 * len(experiments)
    for experiment in experiments:
        rows = table[table["experiment"] == experiment.folder].sort_values("loop")
        assert list(rows["loop"]) == [0, 1]
        dice = []
        for _, row in rows.iterrows():
            loop_folder = experiment.loop_results(int(row["loop"]))
            summary = read_json(loop_folder / "summary.json")
            costs = read_json(loop_folder / "costs.json")
            assert row["dice_mean"] == pytest.approx(summary["foreground_mean"]["Dice"])
            assert row["cum_patches"] == costs["cumulative"]["patches"]
            assert row["cum_foreground_voxels"] == costs["cumulative"]["foreground_voxels"]
            dice.append(summary["foreground_mean"]["Dice"])
        aubc_runs = pd.read_csv(results_csv.parent / "aubc_runs.csv")
        run = aubc_runs[aubc_runs["experiment"] == experiment.folder].iloc[0]
        # two loops: the normalised trapezoid is the mean of the two values
        assert run["aubc_dice_mean"] == pytest.approx((dice[0] + dice[1]) / 2)
        assert run["final_dice_mean"] == pytest.approx(dice[1])
    summary = pd.read_csv(output / "summary.csv")
    assert set(summary["strategy"]) == {STRATEGY, SECOND_STRATEGY}
    assert not any(math.isnan(v) for v in pd.read_csv(results_csv.parent / "aubc.csv")["aubc_dice_mean_mean"])


def test_every_plot_is_a_valid_nonempty_png(analysis):
    output, _ = analysis
    assert_valid_pngs(output)
    assert next(output.rglob("dice_vs_budget.png"))


def test_query_pictures_per_loop_and_patch(e2e_grid, tmp_path):
    experiment = list_experiments(e2e_grid)[0]
    result = nnactive(
        ["visualize-queries", "--experiment", str(experiment.results), "--output", str(tmp_path)], e2e_grid
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert_valid_pngs(tmp_path)
    overviews = sorted(p.name for p in tmp_path.rglob("overview-loop_*.png"))
    assert overviews == ["overview-loop_000.png", "overview-loop_001.png"]
    config = read_json(experiment.results / "config.json")
    assert len(list(tmp_path.rglob("loop_001/*.png"))) == config["query_size"]
