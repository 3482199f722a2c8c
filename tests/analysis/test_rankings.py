import math

import pandas as pd
import pytest

from nnactive_core.analysis.rankings import (
    friedman_nemenyi,
    leave_one_seed_out,
    nemenyi_critical_difference,
)


def _runs(scores):
    rows = [
        {"strategy": s, "seed": seed, "aubc": v}
        for s, values in scores.items()
        for seed, v in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_consistent_ranking_is_perfectly_stable():
    result = leave_one_seed_out(
        _runs({"a": [0.9, 0.8, 0.85], "b": [0.5, 0.6, 0.55], "c": [0.1, 0.2, 0.3]}), "aubc"
    )
    assert result.mean_tau == pytest.approx(1.0)
    assert result.pairs == 3
    assert result.ranks.loc[0].tolist() == [1.0, 2.0, 3.0]


def test_ranking_that_depends_on_one_seed_is_unstable():
    # leaving seed 0 out ranks b first; leaving seed 1 or 2 out ranks a first
    result = leave_one_seed_out(
        _runs({"a": [0.9, 0.5, 0.5], "b": [0.2, 0.6, 0.6], "c": [0.1, 0.1, 0.1]}), "aubc"
    )
    assert result.ranks.loc[0, "b"] == 1 and result.ranks.loc[1, "a"] == 1
    assert result.mean_tau < 1.0


def test_leave_one_seed_out_needs_two_seeds():
    result = leave_one_seed_out(_runs({"a": [0.9], "b": [0.5]}), "aubc")
    assert math.isnan(result.mean_tau) and "2 seeds" in result.note


def test_critical_difference_matches_demsar_table():
    # Demsar (2006), Table 5a: q_0.05 = 2.343 (k=3), 2.569 (k=4), 2.728 (k=5)
    for k, q in ((3, 2.343), (4, 2.569), (5, 2.728)):
        assert nemenyi_critical_difference(k, 10) == pytest.approx(q * math.sqrt(k * (k + 1) / 60), rel=1e-3)


def test_friedman_nemenyi_on_clear_ordering():
    scores = pd.DataFrame(
        {
            "a": [0.9, 0.8, 0.85, 0.7, 0.9, 0.8],
            "b": [0.5, 0.6, 0.5, 0.6, 0.5, 0.6],
            "c": [0.1, 0.2, 0.3, 0.2, 0.1, 0.2],
        },
        index=[f"s{i}" for i in range(6)],
    )
    result = friedman_nemenyi(scores)
    assert result.mean_ranks.to_dict() == {"a": 1.0, "b": 2.0, "c": 3.0}
    assert result.statistic == pytest.approx(12.0)  # chi2 = 12 N / (k (k+1)) * sum R^2 - 3 N (k+1)
    assert result.p_value < 0.01
    assert result.nemenyi_p.loc["a", "c"] < 0.05 < result.nemenyi_p.loc["a", "b"]
    assert result.nemenyi_p.loc["a", "c"] == result.nemenyi_p.loc["c", "a"]


def test_friedman_skipped_with_note():
    too_few = friedman_nemenyi(pd.DataFrame({"a": [0.1, 0.2], "b": [0.3, 0.4]}))
    assert too_few.ranks.empty and "skipped" in too_few.note
    one_setting = friedman_nemenyi(pd.DataFrame({"a": [0.1], "b": [0.3], "c": [0.2]}))
    assert "skipped" in one_setting.note


def test_strategies_missing_in_a_setting_are_left_out():
    scores = pd.DataFrame({"a": [0.9, 0.8], "b": [0.5, 0.6], "c": [0.1, 0.2], "d": [0.3, None]})
    result = friedman_nemenyi(scores)
    assert "d" not in result.mean_ranks.index and "left out: d" in result.note
