import math

import numpy as np
import pandas as pd
import pytest

from nnactive_core.analysis.fg_efficiency import POOR_R2, Anchor, efficiency_table, fit_gamma, model


def _synthetic(gamma, c=0.9, a=0.6, x0=0.05, noise=0.0, seed=0, strategy="s"):
    rng = np.random.default_rng(seed)
    rows = []
    for run in range(3):
        xs = [x0, 0.1 + 0.02 * run, 0.2 + 0.03 * run, 0.35, 0.5 + 0.05 * run]
        for budget, x in zip([10, 20, 30, 40, 50], xs, strict=True):
            y = c - a * math.exp(-gamma * (x - x0)) + (rng.normal(0, noise) if budget > 10 else 0.0)
            rows.append(
                {
                    "strategy": strategy,
                    "seed": run,
                    "budget_patches": budget,
                    "pct_foreground_voxels": 100 * x,
                    "dice_mean": y,
                }
            )
    return pd.DataFrame(rows)


def test_recovers_known_gamma_exactly():
    table = _synthetic(gamma=7.5)
    fits = efficiency_table(table, reference=0.9)
    fit = fits.iloc[0]
    assert fit["gamma"] == pytest.approx(7.5, rel=1e-6)
    assert fit["r2"] == pytest.approx(1.0)
    assert fit["x0"] == pytest.approx(0.05) and fit["a"] == pytest.approx(0.6)
    assert fit["c_source"] == "full-data reference"


def test_recovers_gamma_under_noise_and_reports_std_not_variance():
    from scipy.optimize import curve_fit

    table = _synthetic(gamma=12.0, noise=0.01, seed=3)
    fit = efficiency_table(table, reference=0.9).iloc[0]
    assert fit["gamma"] == pytest.approx(12.0, rel=0.1)
    anchor = Anchor(c=0.9, a=0.6, x0=0.05)
    _, covariance = curve_fit(
        lambda x, g: model(x, g, anchor), table["pct_foreground_voxels"] / 100, table["dice_mean"], p0=[10.0]
    )
    assert fit["gamma_std"] == pytest.approx(math.sqrt(covariance[0, 0]), rel=1e-3)
    assert 0.9 < fit["r2"] < 1.0


def test_faster_strategy_gets_higher_gamma_and_default_c_is_max_dice():
    table = pd.concat([_synthetic(gamma=5.0, strategy="slow"), _synthetic(gamma=20.0, strategy="fast")])
    fits = efficiency_table(table).set_index("strategy")
    assert fits.loc["fast", "gamma"] > fits.loc["slow", "gamma"]
    assert fits.loc["fast", "c"] == pytest.approx(table["dice_mean"].max())
    assert fits.loc["fast", "c_source"] == "max observed Dice in the setting"


def test_degenerate_inputs_give_nan_with_note():
    fit = fit_gamma([0.1], [0.5], Anchor(c=0.9, a=0.4, x0=0.1))
    assert math.isnan(fit.gamma) and fit.note
    fit = fit_gamma([0.1, 0.2], [0.9, 0.9], Anchor(c=0.9, a=0.0, x0=0.1))
    assert math.isnan(fit.gamma) and "already reaches" in fit.note
    empty = efficiency_table(pd.DataFrame({"strategy": ["a"], "budget_patches": [1], "dice_mean": [0.5]}))
    assert empty.empty


def test_a_poor_fit_is_flagged():
    good = efficiency_table(_synthetic(gamma=12.0, noise=0.01, seed=3), reference=0.9).iloc[0]
    assert not good["poor_fit"] and good["note"] == ""
    table = _synthetic(gamma=12.0, noise=0.25, seed=3)
    fit = efficiency_table(table, reference=0.9).iloc[0]
    assert fit["r2"] < POOR_R2
    assert fit["poor_fit"] and fit["note"] == f"poor fit: R² = {fit['r2']:.2f} < {POOR_R2}"
