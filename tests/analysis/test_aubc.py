import math

import pandas as pd
import pytest

from nnactive_core.analysis.aubc import aubc, final_value, run_table, strategy_table


def test_equal_spacing_by_hand():
    # x = 0, 0.5, 1: 0.5 * (0.2 + 0.4) / 2 + 0.5 * (0.4 + 0.9) / 2
    assert aubc([10, 20, 30], [0.2, 0.4, 0.9]) == pytest.approx(0.475)


def test_unequal_spacing_uses_actual_budgets():
    # x = 0, 0.25, 1: 0.25 * 0.3 + 0.75 * 0.65
    assert aubc([10, 20, 50], [0.2, 0.4, 0.9]) == pytest.approx(0.5625)
    assert aubc([50, 10, 20], [0.9, 0.2, 0.4]) == pytest.approx(0.5625), "order does not matter"


def test_constant_curve_gives_its_value():
    assert aubc([5, 7, 40, 41], [0.6] * 4) == pytest.approx(0.6)


def test_single_loop_is_nan():
    assert math.isnan(aubc([10], [0.5]))
    assert math.isnan(aubc([10, 10], [0.5, 0.6]))


def test_a_repeated_budget_is_a_step_at_that_budget():
    # a budgeted loop that bought nothing: 0.2 closes [0, 10], 0.3 opens [10, 20]
    assert aubc([0, 10, 10, 20], [0.1, 0.2, 0.3, 0.5]) == pytest.approx(0.5 * 0.15 + 0.5 * 0.4)
    assert final_value([10, 20, 20], [0.1, 0.4, 0.6]) == 0.6, "the last loop at the largest budget"


def test_two_experiments_with_one_strategy_and_seed_are_refused():
    rows = [("a", 1, "a1", 10, 0.2), ("a", 1, "a1", 20, 0.4), ("a", 1, "copy", 30, 0.5)]
    with pytest.raises(ValueError, match="experiments a1, copy share strategy a and seed 1"):
        run_table(_table(rows), ["dice_mean"])


def test_final_value_is_at_largest_budget():
    assert final_value([30, 10, 20], [0.7, 0.1, 0.2]) == 0.7
    assert math.isnan(final_value([], []))


def _table(rows):
    return pd.DataFrame(rows, columns=["strategy", "seed", "experiment", "budget_patches", "dice_mean"])


def test_aggregate_over_complete_runs_only():
    rows = []
    for seed, values in ((1, [0.2, 0.4, 0.6]), (2, [0.4, 0.6, 0.8])):
        rows += [("a", seed, f"a{seed}", b, v) for b, v in zip([10, 20, 30], values, strict=True)]
    rows += [("a", 3, "a3", 10, 0.9), ("a", 3, "a3", 20, 0.9)]  # unfinished: stops at 20
    runs = run_table(_table(rows), ["dice_mean"])
    assert runs["complete"].tolist() == [True, True, False]
    assert runs["aubc_dice_mean"].tolist() == pytest.approx([0.4, 0.6, 0.9])
    summary = strategy_table(runs, ["dice_mean"]).iloc[0]
    assert summary["runs"] == 2 and summary["runs_excluded"] == 1
    assert summary["aubc_dice_mean_mean"] == pytest.approx(0.5)
    assert summary["aubc_dice_mean_std"] == pytest.approx(math.sqrt(0.02))
    assert summary["aubc_dice_mean_count"] == 2
    assert summary["final_dice_mean_mean"] == pytest.approx(0.7)


def test_run_with_a_larger_starting_budget_is_still_complete():
    rows = [("a", 1, "a1", b, 0.5) for b in (10, 20, 30)] + [("a", 2, "a2", b, 0.5) for b in (12, 22, 32)]
    runs = run_table(_table(rows), ["dice_mean"])
    assert runs["complete"].all()
    assert strategy_table(runs, ["dice_mean"]).iloc[0]["aubc_dice_mean_count"] == 2
