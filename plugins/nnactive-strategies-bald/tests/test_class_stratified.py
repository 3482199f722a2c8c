import numpy as np
import pytest
import torch

from nnactive_core.strategies.api import GLOBAL_POOL, CandidateTable
from nnactive_core.testing import make_query_context
from nnactive_strategies_bald.class_stratified import ClassStratifiedEntropy
from nnactive_strategies_bald.measures import predictive_entropy
from nnactive_strategies_bald.power import ConstantBeta, ExponentialBeta

CLASP = ClassStratifiedEntropy(name="clasp_test", description="test", ratio=0.66, beta=ExponentialBeta())
PLAIN = ClassStratifiedEntropy(name="clas_test", description="test", ratio=0.66)


def context(**overrides):
    fields = dict(label_values=(0, 1, 2, 3))
    fields.update(overrides)
    return make_query_context(**fields)


def test_pools_are_the_foreground_labels_then_global():
    assert CLASP.pools(context()) == (1, 2, 3, GLOBAL_POOL)
    assert CLASP.pools(context(label_values=(0, 2, 5))) == (2, 5, GLOBAL_POOL)


def test_voxel_scores_map_non_contiguous_labels_to_their_channels(make_probabilities):
    ctx = context(label_values=(0, 2, 5))
    probs = torch.from_numpy(make_probabilities(members=2, classes=3, shape=(4, 3, 5), seed=2))
    scores = CLASP.voxel_scores(probs, ctx)
    pe = predictive_entropy(probs)
    mean = probs.mean(dim=0)
    assert scores.shape == (3, 4, 3, 5)
    torch.testing.assert_close(scores[0], pe * mean[1])
    torch.testing.assert_close(scores[1], pe * mean[2])
    torch.testing.assert_close(scores[2], pe)


def test_voxel_scores_reject_channel_count_mismatch(make_probabilities):
    probs = torch.from_numpy(make_probabilities(members=2, classes=3, shape=(2, 2, 2)))
    with pytest.raises(ValueError, match=r"clasp_test: .* one channel per label value \(0, 1, 2, 3\)"):
        CLASP.voxel_scores(probs, context())


# Hand-computed from the published rule: per case the global pool keeps floor(n * (1 - ratio)) and each
# class pool floor(n * (ratio / (F + 1))), the F + 1 counting the global pool too, at least 1 each, in
# float64 as the established code computes them.
PUBLISHED_CASE_QUOTAS = [
    # (n = patches_per_case, ratio, F, class quota, global quota)
    (10, 0.66, 3, 1, 3),  # 10 * 0.165 = 1.65 -> 1; 10 * 0.34 = 3.3999999999999995 -> 3
    (20, 0.66, 3, 3, 6),  # 3.3000000000000003 -> 3 (4 if divided by F); 6.799999999999999 -> 6
    (50, 0.66, 3, 8, 17),  # 8.25 -> 8; 50 * (1 - 0.66) = 17.0 -> 17
    (150, 0.66, 3, 24, 50),  # 24.75 -> 24; 150 * (1 - 0.66) = 50.99999999999999 -> 50
    (1, 0.66, 3, 1, 1),  # 0.165 and 0.34 -> 0, at least 1 each
    (12, 0.33, 3, 1, 8),  # 12 * 0.0825 = 0.99 -> 0 -> 1; 8.04 -> 8
    (20, 0.33, 2, 2, 13),  # 20 * 0.11 = 2.2 -> 2; 13.399999999999999 -> 13
    (20, 0.66, 15, 1, 6),  # AMOS: 20 * 0.04125 = 0.825 -> 0 -> 1
]


@pytest.mark.parametrize(
    ("per_case", "ratio", "classes", "class_quota", "global_quota"), PUBLISHED_CASE_QUOTAS
)
def test_case_quotas_follow_the_published_rule(per_case, ratio, classes, class_quota, global_quota):
    strategy = ClassStratifiedEntropy(name="quota_test", description="test", ratio=ratio)
    ctx = context(label_values=tuple(range(classes + 1)), patches_per_case=per_case)
    expected = {value: class_quota for value in range(1, classes + 1)}
    assert strategy.case_quotas(ctx) == {**expected, GLOBAL_POOL: global_quota}


def test_case_quotas_over_the_class_pools_only_is_an_option():
    strategy = ClassStratifiedEntropy(
        name="quota_test", description="test", ratio=0.66, foreground_case_quota=True
    )
    # 20 * (0.66 / 3) = 4.4 -> 4 per class pool; the global pool as published
    quotas = strategy.case_quotas(context(patches_per_case=20))
    assert quotas == {1: 4, 2: 4, 3: 4, GLOBAL_POOL: 6}


def test_every_registered_class_strategy_uses_the_published_case_quotas():
    from nnactive_strategies_bald.plugin import all_strategies

    stratified = [s for s in all_strategies() if isinstance(s, ClassStratifiedEntropy)]
    assert len(stratified) == 10
    assert not any(s.foreground_case_quota for s in stratified)


def test_case_quotas_without_foreground_use_the_global_pool():
    assert PLAIN.case_quotas(context(label_values=(0,), patches_per_case=4)) == {GLOBAL_POOL: 4}


def test_pool_order_is_a_seeded_shuffle():
    pools = (1, 2, 3, GLOBAL_POOL)
    orders = {tuple(CLASP.pool_order(pools, np.random.default_rng(seed))) for seed in range(30)}
    assert all(sorted(order) == sorted(pools) for order in orders)
    assert len(orders) > 5
    first = CLASP.pool_order(pools, np.random.default_rng(4))
    assert first == CLASP.pool_order(pools, np.random.default_rng(4))


def test_no_beta_leaves_scores_untouched_and_a_number_is_a_constant_beta():
    scores = np.array([[0.5, 0.25], [0.1, 0.9]])
    assert PLAIN.perturb(scores, context(), np.random.default_rng(0)) is scores
    numeric = ClassStratifiedEntropy(name="clap_test", description="test", ratio=0.33, beta=1)
    assert numeric.beta == ConstantBeta(beta=1.0)


def test_invalid_ratio_is_rejected():
    with pytest.raises(ValueError, match="ratio must lie in"):
        ClassStratifiedEntropy(name="bad", description="test", ratio=1.5)


def candidate_table(per_pool: dict[int, int], seed: int = 0) -> CandidateTable:
    """``per_pool[pool]`` candidates for each pool, one case per candidate, random scores."""
    rng = np.random.default_rng(seed)
    pools = np.concatenate([np.full(count, pool) for pool, count in per_pool.items()])
    count = len(pools)
    return CandidateTable(
        cases=tuple(f"case_{i:03d}.nii.gz" for i in range(count)),
        case_index=np.arange(count),
        start=np.zeros((count, 3), dtype=np.int64),
        size=np.full((count, 3), 4, dtype=np.int64),
        score=rng.uniform(0.1, 1.0, size=count),
        pool=pools,
    )


def pool_counts(table: CandidateTable, rows: np.ndarray) -> dict[int, int]:
    pools, counts = np.unique(table.pool[rows], return_counts=True)
    return dict(zip(pools.tolist(), counts.tolist(), strict=True))


def test_clasp_quotas_query_20_three_classes():
    table = candidate_table({1: 10, 2: 10, 3: 10, GLOBAL_POOL: 10})
    ctx = context(query_size=20)
    favoured = set()
    for seed in range(20):
        rows = CLASP.compose(table, ctx, np.random.default_rng(seed))
        assert len(rows) == 20 and len(set(rows.tolist())) == 20
        counts = pool_counts(table, rows)
        assert counts[GLOBAL_POOL] == 7
        assert sorted(counts[pool] for pool in (1, 2, 3)) == [4, 4, 5]
        favoured.add(max((1, 2, 3), key=counts.get))
        for pool, count in counts.items():
            in_pool = np.flatnonzero(table.pool == pool)
            best = in_pool[np.argsort(-table.score[in_pool], kind="stable")][:count]
            assert sorted(rows[table.pool[rows] == pool].tolist()) == sorted(best.tolist())
        again = CLASP.compose(table, ctx, np.random.default_rng(seed))
        assert rows.tolist() == again.tolist()
    # the extra class patch goes to a pool drawn by the seeded rng, not always the same one
    assert favoured == {1, 2, 3}


def test_clasp_quotas_query_40_two_classes():
    # Hippocampus qs 40: floor(26.4) = 26 class patches, 13 + 13 (26 mod 2 = 0 extra), 14 global
    table = candidate_table({1: 20, 2: 20, GLOBAL_POOL: 20})
    ctx = context(label_values=(0, 1, 2), query_size=40)
    for seed in range(5):
        rows = CLASP.compose(table, ctx, np.random.default_rng(seed))
        assert pool_counts(table, rows) == {1: 13, 2: 13, GLOBAL_POOL: 14}


def test_short_class_pool_is_filled_from_the_other_pools():
    table = candidate_table({1: 1, 2: 10, 3: 10, GLOBAL_POOL: 10}, seed=3)
    rows = CLASP.compose(table, context(query_size=20), np.random.default_rng(0))
    assert len(rows) == 20 and len(set(rows.tolist())) == 20
    assert pool_counts(table, rows)[1] == 1


def test_through_the_engine_with_non_contiguous_labels(make_probabilities):
    from nnactive_core.query.engine import CaseInput, run_score_query

    ctx = context(label_values=(0, 2, 5), patch_size=(3, 3, 3), patches_per_case=3, query_size=6)
    cases = [
        CaseInput(
            file=f"case_{i}.nii.gz",
            shape=(9, 9, 9),
            load_probabilities=lambda i=i: make_probabilities(classes=3, shape=(9, 9, 9), seed=i),
        )
        for i in range(4)
    ]
    result = run_score_query(CLASP, cases, ctx)
    table = result.candidates
    assert set(table.pool.tolist()) == {2, 5, GLOBAL_POOL}
    # per case: class quota floor(3 * (0.66 / 3)) = 0 -> 1 each, global floor(3 * 0.34) = 1
    assert np.bincount(table.case_index).tolist() == [3, 3, 3, 3]
    # query: floor(6 * 0.66) = 3 class patches over 2 pools (1 + 1 + one drawn), 3 global
    counts = pool_counts(table, result.chosen)
    assert counts[GLOBAL_POOL] == 3 and sorted([counts[2], counts[5]]) == [1, 2]
    for i, a in enumerate(result.patches):
        assert not any(a.intersects(b) for b in result.patches[i + 1 :])
