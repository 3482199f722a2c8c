import math

import pandas as pd
import pytest

from nnactive_core.analysis.curves import ci_half_width, curve_table


def test_ci_half_width_uses_t_distribution():
    # t_{0.975, 2} = 4.302653
    assert ci_half_width(1.0, 3) == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert math.isnan(ci_half_width(1.0, 1))


def test_curve_table_mean_std_and_positions():
    table = pd.DataFrame(
        {
            "strategy": ["a"] * 4,
            "seed": [1, 2, 1, 2],
            "budget_patches": [10, 10, 20, 20],
            "dice_mean": [0.2, 0.4, 0.5, 0.5],
            "pct_foreground_voxels": [1.0, 3.0, 4.0, 6.0],
        }
    )
    curves = curve_table(table, ["dice_mean"], positions=["pct_foreground_voxels"])
    assert curves["dice_mean_mean"].tolist() == pytest.approx([0.3, 0.5])
    assert curves["dice_mean_std"].tolist() == pytest.approx([math.sqrt(0.02), 0.0])
    assert curves["dice_mean_count"].tolist() == [2, 2]
    assert curves["pct_foreground_voxels_mean"].tolist() == pytest.approx([2.0, 5.0])
    assert curves["dice_mean_ci95"].iloc[0] == pytest.approx(12.706205 * math.sqrt(0.02) / math.sqrt(2))


def test_confidence_bands_stay_inside_the_dice_range():
    table = pd.DataFrame(
        {
            "strategy": ["a"] * 5,
            "seed": [1, 2, 1, 2, 1],
            "budget_patches": [10, 10, 20, 20, 30],
            "dice_mean": [0.05, 0.06, 0.98, 0.99, 0.5],
        }
    )
    curves = curve_table(table, ["dice_mean"])
    low, high = curves["dice_mean_ci95_low"].tolist(), curves["dice_mean_ci95_high"].tolist()
    half = curves["dice_mean_ci95"].tolist()
    assert curves["dice_mean_mean"].iloc[0] - half[0] < 0 and low[0] == 0.0
    assert high[0] == pytest.approx(curves["dice_mean_mean"].iloc[0] + half[0])
    assert curves["dice_mean_mean"].iloc[1] + half[1] > 1 and high[1] == 1.0
    assert math.isnan(low[2]) and math.isnan(high[2]), "one seed: no band, not a band at the bounds"
