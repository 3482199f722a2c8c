import numpy as np
import pytest

from nnactive_core.strategies.api import GLOBAL_POOL, CandidateTable
from nnactive_core.testing import make_query_context
from nnactive_strategies_bald.kmeans import KMeansStrategy, k_center_greedy, standardise

STRATEGY = KMeansStrategy(name="kmeans_test", description="test", measure="mutual_information")


def table(features, scores=None) -> CandidateTable:
    count = len(features if scores is None else scores)
    return CandidateTable(
        cases=tuple(f"case_{i}.nii.gz" for i in range(count)),
        case_index=np.arange(count),
        start=np.zeros((count, 3), dtype=np.int64),
        size=np.full((count, 3), 4, dtype=np.int64),
        score=np.linspace(1.0, 0.1, count) if scores is None else np.asarray(scores),
        pool=np.full(count, GLOBAL_POOL),
        features=None if features is None else np.asarray(features, dtype=np.float32),
    )


def test_k_center_starts_at_largest_norm_then_farthest_point():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [0.0, 3.0], [9.0, 0.5]])
    # norm: row 2 is largest; squared distances to it: 100, 81, -, 109, 1.25 -> row 3;
    # then distances to the nearest of rows 2 and 3: 9, 10, -, -, 1.25 -> row 1
    assert k_center_greedy(points, 3).tolist() == [2, 3, 1]


def test_k_center_returns_all_rows_when_k_exceeds_count_and_never_repeats():
    points = np.ones((4, 3))
    chosen = k_center_greedy(points, 10)
    assert sorted(chosen.tolist()) == [0, 1, 2, 3]
    assert k_center_greedy(points, 0).size == 0


def test_standardise_scales_each_dimension_without_centring():
    features = np.array([[1.0, 100.0], [3.0, 300.0], [np.nan, 200.0]])
    scaled = standardise(features)
    assert np.isfinite(scaled).all()
    assert scaled[2, 0] == 0.0
    np.testing.assert_allclose(scaled.std(axis=0), 1.0, atol=1e-5)
    assert scaled[1, 1] > 0 and scaled[0, 1] > 0


def test_compose_picks_diverse_candidates_not_the_most_uncertain():
    # three tight clusters; the most uncertain candidates all sit in the first
    rng = np.random.default_rng(0)
    centres = np.array([[5.0, 0.0], [0.0, 5.0], [-5.0, -5.0]])
    features = np.concatenate([centre + 0.01 * rng.normal(size=(4, 2)) for centre in centres])
    ctx = make_query_context(query_size=3)
    rows = STRATEGY.compose(table(features), ctx, np.random.default_rng(1))
    assert sorted(rows // 4) == [0, 1, 2]
    again = STRATEGY.compose(table(features), ctx, np.random.default_rng(99))
    assert rows.tolist() == again.tolist()


def test_compose_without_features_names_the_strategy():
    with pytest.raises(ValueError, match="kmeans_test needs candidate features"):
        STRATEGY.compose(table(None, scores=[1.0, 0.5]), make_query_context(), np.random.default_rng(0))


def test_candidates_and_features_flag():
    ctx = make_query_context(patches_per_case=3)
    assert STRATEGY.requires_features is True
    assert STRATEGY.case_quotas(ctx) == {GLOBAL_POOL: 6}
