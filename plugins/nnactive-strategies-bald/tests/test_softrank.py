import numpy as np

from nnactive_core.query.engine import CaseInput, run_score_query
from nnactive_core.strategies.api import GLOBAL_POOL, CandidateTable
from nnactive_core.testing import make_probabilities, make_query_context
from nnactive_strategies_bald.softrank import SoftRankStrategy

STRATEGY = SoftRankStrategy(name="softrank_test", description="test", measure="mutual_information")
DRAWS = 4000
# chi-square quantile 0.999 with 3 degrees of freedom
CHI2_3_999 = 16.27


def candidates(scores) -> CandidateTable:
    count = len(scores)
    return CandidateTable(
        cases=tuple(f"case_{i}.nii.gz" for i in range(count)),
        case_index=np.arange(count),
        start=np.zeros((count, 3), dtype=np.int64),
        size=np.full((count, 3), 4, dtype=np.int64),
        score=np.asarray(scores, dtype=np.float64),
        pool=np.full(count, GLOBAL_POOL),
    )


def test_first_pick_frequencies_follow_one_over_rank():
    # the scores' scale must not matter, only their order: rank = 2, 4, 1, 3
    table = candidates([0.5, 0.01, 0.9, 0.3])
    ctx = make_query_context(query_size=1)
    counts = np.zeros(4, dtype=np.int64)
    for rng in (np.random.default_rng(s) for s in np.random.SeedSequence(7).spawn(DRAWS)):
        counts[STRATEGY.compose(table, ctx, rng)[0]] += 1
    weights = 1.0 / np.array([2.0, 4.0, 1.0, 3.0])
    expected = DRAWS * weights / weights.sum()
    assert ((counts - expected) ** 2 / expected).sum() < CHI2_3_999
    proportional = DRAWS * table.score / table.score.sum()
    assert ((counts - proportional) ** 2 / proportional).sum() > 5 * CHI2_3_999


def test_compose_returns_query_size_distinct_rows_seeded():
    table = candidates(np.linspace(1.0, 0.1, 10))
    ctx = make_query_context(query_size=4)
    rows = STRATEGY.compose(table, ctx, np.random.default_rng(5))
    assert len(set(rows.tolist())) == 4
    assert rows.tolist() == STRATEGY.compose(table, ctx, np.random.default_rng(5)).tolist()


def test_each_case_offers_twice_its_patches_as_candidates():
    ctx = make_query_context(patch_size=(2, 2, 2), patches_per_case=3, query_size=4)
    assert STRATEGY.case_quotas(ctx) == {GLOBAL_POOL: 6}
    cases = [
        CaseInput(
            file=f"case_{i}.nii.gz",
            shape=(8, 8, 8),
            load_probabilities=lambda i=i: make_probabilities(shape=(8, 8, 8), seed=i),
        )
        for i in range(2)
    ]
    result = run_score_query(STRATEGY, cases, ctx)
    assert np.bincount(result.candidates.case_index).tolist() == [6, 6]
    assert len(result.patches) == 4
