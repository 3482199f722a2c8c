"""``nnactive analyze`` and ``nnactive visualize-queries`` on fabricated result folders."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from analysis.fake_results import BASE, fake_experiment, two_by_two
from click.testing import CliRunner

from nnactive_core.cli.main import cli

SLUG = "patch-10_10_10__sb-random__sbs-10__qs-10__steps-4__tr-tiny"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100, (path, image.shape)


def _trapezoid(budgets, values):
    x = (np.asarray(budgets) - budgets[0]) / (budgets[-1] - budgets[0])
    return float(np.sum(np.diff(x) * (np.asarray(values[1:]) + np.asarray(values[:-1])) / 2))


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    folders = two_by_two(root)
    fake_experiment(root, 9, "random", 3, [0.2, 0.3], [10, 20], finished=False, query_steps=4)
    output = root.parent / "analysis"
    result = CliRunner().invoke(cli, ["analyze", "--results", str(root), "--output", str(output)])
    assert result.exit_code == 0, result.output
    return root, folders, output / BASE / SLUG, output, result.output


def test_prints_main_table_summary_and_every_plot(analysed):
    _, _, setting, output, printed = analysed
    assert f"main table: {output / 'summary.csv'}" in printed
    assert f"summary: {output / 'summary.txt'}" in printed
    assert f"summary as JSON: {output / 'summary.json'}" in printed
    plots = [line.removeprefix("plot: ") for line in printed.splitlines() if line.startswith("plot: ")]
    assert plots[0] == str(setting / "dice_vs_budget.png")
    assert sorted(plots) == sorted(str(path) for path in output.rglob("*.png"))


def test_json_summary_lists_rows_plots_and_what_is_missing(analysed):
    _, _, setting, output, _ = analysed
    summary = json.loads((output / "summary.json").read_text())
    table = pd.read_csv(output / "summary.csv")
    assert [row["strategy"] for row in summary["rows"]] == list(table["strategy"])
    for row, (_, expected) in zip(summary["rows"], table.iterrows(), strict=True):
        assert row["aubc_dice_mean_mean"] == pytest.approx(expected["aubc_dice_mean_mean"])
    assert summary["settings"] == [str(setting)]
    assert sorted(summary["plots"]) == sorted(str(path) for path in output.rglob("*.png"))
    assert summary["missing"] == (output / "missing.txt").read_text().splitlines()


def test_results_table_matches_result_files(analysed):
    _, folders, setting, _, _ = analysed
    table = pd.read_csv(setting / "results.csv")
    assert len(table) == 4 * 4 + 2
    for (strategy, seed), folder in folders.items():
        run = table[(table["strategy"] == strategy) & (table["seed"] == seed)].sort_values("loop")
        for loop, row in zip(range(4), run.itertuples(), strict=True):
            summary = json.loads((folder / f"loop_{loop:03d}" / "summary.json").read_text())
            costs = json.loads((folder / f"loop_{loop:03d}" / "costs.json").read_text())
            assert row.dice_mean == pytest.approx(summary["foreground_mean"]["Dice"])
            assert row.dice_liver == pytest.approx(summary["mean"]["1"]["Dice"])
            assert row.budget_patches == costs["cumulative"]["patches"]
            expected = 100 * costs["cumulative"]["foreground_voxels"] / costs["pool"]["foreground_voxels"]
            assert row.pct_foreground_voxels == pytest.approx(expected)


def test_aubc_and_final_match_result_files(analysed):
    _, folders, setting, output, _ = analysed
    aubc = pd.read_csv(setting / "aubc.csv").set_index("strategy")
    for strategy in ("random", "better"):
        curves, finals = [], []
        for seed in (1, 2):
            folder = folders[(strategy, seed)]
            values = [
                json.loads((folder / f"loop_{k:03d}" / "summary.json").read_text())["foreground_mean"]["Dice"]
                for k in range(4)
            ]
            curves.append(_trapezoid([10, 20, 30, 40], values))
            finals.append(values[-1])
        assert aubc.loc[strategy, "aubc_dice_mean_mean"] == pytest.approx(np.mean(curves))
        assert aubc.loc[strategy, "aubc_dice_mean_std"] == pytest.approx(np.std(curves, ddof=1))
        assert aubc.loc[strategy, "aubc_dice_mean_count"] == 2
        assert aubc.loc[strategy, "final_dice_mean_mean"] == pytest.approx(np.mean(finals))
    assert aubc.loc["random", "runs_excluded"] == 1, "the unfinished run is left out of AUBC"
    summary = pd.read_csv(output / "summary.csv").set_index("strategy")
    assert summary.loc["better", "aubc_dice_mean_mean"] == pytest.approx(
        aubc.loc["better", "aubc_dice_mean_mean"]
    )
    assert (
        summary.loc["better", "display_name"] == "better"
        and summary.loc["random", "display_name"] == "Random"
    )


def test_learning_curves_use_every_run(analysed):
    _, _, setting, _, _ = analysed
    curves = pd.read_csv(setting / "learning_curves.csv")
    first = curves[(curves["strategy"] == "random") & (curves["budget_patches"] == 10)].iloc[0]
    assert first["dice_mean_count"] == 3, "the unfinished run still contributes its loops"
    assert first["dice_mean_mean"] == pytest.approx((0.30 + 0.32 + 0.2) / 3)
    last = curves[(curves["strategy"] == "better") & (curves["budget_patches"] == 40)].iloc[0]
    assert last["dice_mean_mean"] == pytest.approx(0.71)
    assert last["pct_foreground_voxels_mean"] == pytest.approx(100 * 40 * 40 / 2000)


def test_ppm_by_hand(analysed):
    _, _, setting, _, _ = analysed
    # random - better per budget over seeds 1, 2: (0, 0) none; (-0.10, -0.08) p = 0.07; (-0.10, -0.16)
    # p = 0.15; (-0.15, -0.15) constant and non-zero: significant. One budget of four.
    ppm = json.loads((setting / "ppm.json").read_text())
    matrix = dict(zip(ppm["methods"], ppm["matrix"], strict=True))
    index = ppm["methods"].index
    assert matrix["random"][index("better")] == pytest.approx(0.25)
    assert matrix["better"][index("random")] == 0
    frame = pd.read_csv(setting / "ppm.csv", comment="#", index_col=0)
    assert frame.loc["Random", "better"] == pytest.approx(0.25)


def test_fg_efficiency_and_missing_list(analysed):
    _, _, setting, output, _ = analysed
    fits = pd.read_csv(setting / "fg_efficiency.csv").set_index("strategy")
    assert set(fits.index) == {"random", "better"}
    assert all(math.isfinite(g) and g > 0 for g in fits["gamma"])
    assert fits["c"].iloc[0] == pytest.approx(0.72), "no reference: c is the best observed Dice"
    missing = (output / "missing.txt").read_text()
    assert "unfinished" in missing and "Dataset009_" in missing
    assert "rankings by aubc: skipped" in missing


def test_every_png_is_a_readable_image(analysed):
    _, _, setting, output, _ = analysed
    pngs = sorted(output.rglob("*.png"))
    names = {p.name for p in pngs}
    assert {"dice_vs_budget.png", "dice_vs_fg_voxels.png", "fg_efficiency.png", "ppm.png"} <= names
    for path in pngs:
        assert_png(path)


def test_rankings_across_settings_and_reference(tmp_path):
    root = tmp_path / "results"
    for number, (profile, strategy) in enumerate(
        [(p, s) for p in ("tiny", "small") for s in ("random", "better", "best")], start=1
    ):
        lift = {"random": 0.0, "better": 0.05, "best": 0.1}[strategy]
        for seed in (1, 2):
            fake_experiment(
                root,
                10 * number + seed,
                strategy,
                seed,
                [0.3, 0.4 + lift + 0.01 * seed, 0.5 + lift],
                [10, 20, 30],
                training_profile=profile,
            )
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps({BASE: {"foreground_mean": {"Dice": 0.8}}}))
    output = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        ["analyze", "--results", str(root), "--output", str(output), "--holm", "--reference", str(reference)],
    )
    assert result.exit_code == 0, result.output
    friedman = json.loads((output / "rankings" / "friedman_aubc.json").read_text())
    assert friedman["mean_ranks"] == {"best": 1.0, "better": 2.0, "random": 3.0}
    assert_png(output / "rankings" / "ranks_aubc.png")
    assert_png(output / BASE / "ppm_merged.png")
    merged = json.loads((output / BASE / "ppm_merged.json").read_text())
    assert merged["settings"] == 2 and merged["holm"] is True
    fits = pd.read_csv(next(output.glob(f"{BASE}/*tr-small/fg_efficiency.csv")))
    assert (fits["c"] == 0.8).all() and (fits["c_source"] == "full-data reference").all()


def test_user_errors_are_one_line(tmp_path):
    runner = CliRunner()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(cli, ["analyze", "--results", str(empty), "--output", str(tmp_path / "o")])
    assert result.exit_code == 1 and "no experiment results" in result.output
    assert "Traceback" not in result.output
    two_by_two(tmp_path / "r")
    bad = tmp_path / "ref.json"
    bad.write_text("[1, 2]")
    result = runner.invoke(
        cli,
        [
            "analyze",
            "--results",
            str(tmp_path / "r"),
            "--output",
            str(tmp_path / "o"),
            "--reference",
            str(bad),
        ],
    )
    assert result.exit_code == 1 and "ref.json" in result.output
    result = runner.invoke(
        cli,
        ["visualize-queries", "--experiment", "nothing-here", "--output", str(tmp_path / "q")],
        env={"nnActive_results": str(tmp_path / "r")},
    )
    assert result.exit_code == 1 and "nothing-here" in result.output
