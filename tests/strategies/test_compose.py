"""Composition helpers: Gumbel-top-k noise, stratified quotas, per-pool top-k and β schedules."""

from __future__ import annotations

import numpy as np
import pytest

from nnactive_core.strategies.api import GLOBAL_POOL, CandidateTable
from nnactive_core.strategies.compose import (
    LOG_TINY,
    exponential_beta,
    power_noise,
    sigmoid_beta,
    soft_rank_scores,
    stratified_quotas,
    top_k_per_pool,
)

DRAWS = 20000
# chi-square critical value for 3 degrees of freedom at p = 0.001
CHI2_3DOF = 16.27


def chi_square(counts: np.ndarray, probabilities: np.ndarray) -> float:
    expected = probabilities * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("beta", [1.0, 2.0, 5.0])
def test_power_noise_samples_in_proportion_to_score_power(beta):
    scores = np.array([1.0, 2.0, 3.0, 4.0])
    noised = power_noise(np.tile(scores, (DRAWS, 1)), beta, np.random.default_rng(42))
    counts = np.bincount(noised.argmax(axis=1), minlength=4)
    expected = scores**beta / (scores**beta).sum()
    assert chi_square(counts, expected) < CHI2_3DOF


def test_power_noise_second_pick_is_without_replacement():
    # P(second = 2 | first = 3) = p2 / (1 - p3) with p = s / sum(s)
    scores = np.array([1.0, 2.0, 3.0, 4.0])
    noised = power_noise(np.tile(scores, (DRAWS, 1)), 1.0, np.random.default_rng(7))
    order = np.argsort(-noised, axis=1)
    seconds = order[order[:, 0] == 3, 1]
    counts = np.bincount(seconds, minlength=3)[:3]
    expected = scores[:3] / scores[:3].sum()
    assert chi_square(counts, expected) < 13.8  # 2 dof, p = 0.001


def test_power_noise_is_nan_free_and_ranks_non_positive_scores_last():
    scores = np.array([0.0, -1e-7, 0.3, 1e-3, -5.0, 1.0])
    noised = power_noise(np.tile(scores, (2000, 1)), 1.0, np.random.default_rng(0))
    assert np.isfinite(noised).all()
    assert (np.sort(np.argsort(-noised, axis=1)[:, :3], axis=1) == [2, 3, 5]).all()
    assert LOG_TINY == pytest.approx(-708.396, abs=1e-3)


def test_power_noise_is_seeded_and_rejects_bad_input():
    scores = np.random.default_rng(1).random((3, 4, 5))
    first = power_noise(scores, 3.0, np.random.default_rng(9))
    assert first.shape == scores.shape
    np.testing.assert_array_equal(first, power_noise(scores, 3.0, np.random.default_rng(9)))
    with pytest.raises(ValueError, match="beta"):
        power_noise(scores, 0.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="NaN"):
        power_noise(np.array([np.nan, 1.0]), 1.0, np.random.default_rng(0))


def test_soft_rank_samples_in_proportion_to_inverse_rank():
    scores = np.array([1.0, 10.0, 5.0])  # ranks 3, 1, 2
    rng = np.random.default_rng(3)
    winners = np.array([np.argmax(soft_rank_scores(scores, rng)) for _ in range(6000)])
    counts = np.bincount(winners, minlength=3)
    expected = np.array([1 / 3, 1.0, 1 / 2])
    assert chi_square(counts, expected / expected.sum()) < 13.8


def test_soft_rank_ranks_ties_by_position():
    # equal scores: ranks 1 and 2 by position, so the first wins about 2/3 of the time
    rng = np.random.default_rng(4)
    wins = sum(np.argmax(soft_rank_scores(np.array([2.0, 2.0]), rng)) == 0 for _ in range(6000))
    assert abs(wins / 6000 - 2 / 3) < 0.03


def test_stratified_quotas_reference_split():
    # 20 * 0.66 = 13.2 -> 13 class patches, 13 // 3 = 4 each, 13 mod 3 = 1 extra; 20 - 13 = 7 global
    seen_five = set()
    for seed in range(30):
        quotas = stratified_quotas(20, 0.66, [1, 2, 3], np.random.default_rng(seed))
        assert quotas[GLOBAL_POOL] == 7
        assert sorted(quotas[p] for p in (1, 2, 3)) == [4, 4, 5]
        seen_five.add(next(p for p in (1, 2, 3) if quotas[p] == 5))
    assert seen_five == {1, 2, 3}


# Hand-computed from the published rule: n_cls = floor(qs * ratio) in float64, n_cls // F per class pool,
# n_cls mod F pools one more, qs - n_cls global. Remainders "mod F + 1" (one revision of the
# established code) would break the registered settings: ACDC qs 90 (F = 3) would compose 91 patches and
# AMOS qs 40 (F = 15) 39, and the established composition insists on exactly qs.
PUBLISHED_QUERY_QUOTAS = [
    # (qs, ratio, F, class quota, pools with one more, global)
    (20, 0.66, 3, 4, 1, 7),  # 13.200000000000001 -> 13 = 3 * 4 + 1
    (40, 0.66, 2, 13, 0, 14),  # Hippocampus qs 40: 26.400000000000002 -> 26 = 2 * 13
    (60, 0.66, 2, 19, 1, 21),  # 39.6 -> 39 = 2 * 19 + 1
    (90, 0.66, 3, 19, 2, 31),  # ACDC qs 90: 59.400000000000006 -> 59 = 3 * 19 + 2
    (40, 0.66, 15, 1, 11, 14),  # AMOS qs 40: 26 = 15 * 1 + 11
    (200, 0.66, 15, 8, 12, 68),  # AMOS qs 200: 132.0 -> 132 = 15 * 8 + 12
    (500, 0.33, 3, 55, 0, 335),  # 165.0 -> 165 = 3 * 55
    (30, 0.33, 3, 3, 0, 21),  # 9.9 -> 9 = 3 * 3
    (7, 0.66, 4, 1, 0, 3),  # 4.62 -> 4 = 4 * 1
    (100, 0.29, 1, 28, 0, 72),  # 28.999999999999996 -> 28, floored as the established int() does
]


@pytest.mark.parametrize(("qs", "ratio", "classes", "base", "extra", "global_quota"), PUBLISHED_QUERY_QUOTAS)
def test_stratified_quotas_follow_the_published_rule(qs, ratio, classes, base, extra, global_quota):
    pools = list(range(1, classes + 1))
    for seed in range(10):
        quotas = stratified_quotas(qs, ratio, pools, np.random.default_rng(seed))
        assert quotas[GLOBAL_POOL] == global_quota
        assert sorted(quotas[p] for p in pools) == [base] * (classes - extra) + [base + 1] * extra
        assert sum(quotas.values()) == qs


def test_stratified_quotas_hand_the_remainder_to_distinct_uniform_pools():
    # 59 class patches over 3 pools: 2 of the 3 get a 20th, each pool with probability 2/3
    draws = 3000
    extra = np.zeros(3)
    for seed in range(draws):
        quotas = stratified_quotas(90, 0.66, [1, 2, 3], np.random.default_rng(seed))
        extra += [quotas[p] == 20 for p in (1, 2, 3)]
    # 4 standard deviations of a binomial share of 3000 draws is 0.034
    np.testing.assert_allclose(extra / draws, 2 / 3, atol=0.035)


def test_stratified_quotas_edges():
    assert stratified_quotas(7, 0.5, [], np.random.default_rng(0)) == {GLOBAL_POOL: 7}
    quotas = stratified_quotas(3, 1.0, [1, 2, 4, 5], np.random.default_rng(0))
    assert sum(quotas.values()) == 3 and quotas[GLOBAL_POOL] == 0
    with pytest.raises(ValueError, match="ratio"):
        stratified_quotas(3, 1.5, [1], np.random.default_rng(0))


def table(scores, pools) -> CandidateTable:
    n = len(scores)
    return CandidateTable(
        cases=("a.nii.gz",),
        case_index=np.zeros(n, dtype=np.int64),
        start=np.zeros((n, 3), dtype=np.int64),
        size=np.ones((n, 3), dtype=np.int64),
        score=np.asarray(scores, dtype=float),
        pool=np.asarray(pools),
    )


def test_top_k_per_pool_takes_each_pools_best():
    candidates = table([0.9, 0.1, 0.8, 0.7, 0.5, 0.95], [1, 1, 2, 2, GLOBAL_POOL, GLOBAL_POOL])
    rows = top_k_per_pool(candidates, {1: 1, 2: 2, GLOBAL_POOL: 1})
    assert sorted(rows.tolist()) == [0, 2, 3, 5]


def test_top_k_per_pool_fills_a_short_pool_from_the_best_remaining():
    candidates = table([0.9, 0.8, 0.7, 0.6, 0.5], [1, GLOBAL_POOL, GLOBAL_POOL, GLOBAL_POOL, 2])
    rows = top_k_per_pool(candidates, {1: 3, GLOBAL_POOL: 1})
    assert rows.tolist()[:2] == [0, 1]
    assert sorted(rows.tolist()) == [0, 1, 2, 3]
    assert len(top_k_per_pool(candidates, {1: 9})) == 5


def test_exponential_beta_reference_values():
    assert [round(exponential_beta(t, 5), 3) for t in range(4)] == [1.0, 3.162, 10.0, 31.623]
    assert exponential_beta(4, 5) == pytest.approx(100.0)
    assert exponential_beta(0, 1) == 1.0


def test_sigmoid_beta_rescales_to_the_range():
    assert sigmoid_beta(0, 5, 2.0) == pytest.approx(1.0)
    assert sigmoid_beta(4, 5, 2.0) == pytest.approx(100.0)
    assert sigmoid_beta(2, 5, 0.5) == pytest.approx(50.5)
    sharp = [sigmoid_beta(t, 5, 0.5) for t in range(5)]
    smooth = [sigmoid_beta(t, 5, 2.0) for t in range(5)]
    assert sharp == sorted(sharp) and smooth == sorted(smooth)
    assert sharp[1] < smooth[1]
    with pytest.raises(ValueError, match="temperature"):
        sigmoid_beta(0, 5, 0.0)


@pytest.mark.parametrize("scale", [1.0, 0.01])
def test_gumbel_is_numpys_gumbel_draw_for_draw(scale):
    from nnactive_core.strategies.compose import gumbel

    drawn = gumbel((300, 70), scale, np.random.default_rng(11))
    np.testing.assert_allclose(drawn, np.random.default_rng(11).gumbel(0.0, scale, (300, 70)), rtol=1e-14)
