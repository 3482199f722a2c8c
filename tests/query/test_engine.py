"""The streaming query engine with small test-only strategies."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from nnactive_core.patches.aggregate import box_means
from nnactive_core.patches.patch import Patch
from nnactive_core.query.checks import QueryCheckError
from nnactive_core.query.engine import (
    CaseInput,
    StrategyError,
    aggregate_case,
    candidate_features,
    candidate_records,
    run_placement_query,
    run_score_query,
    score_case,
)
from nnactive_core.strategies.api import GLOBAL_POOL, PlacementStrategy, QueryContext, ScoreStrategy
from nnactive_core.strategies.compose import power_noise
from nnactive_core.testing.synthetic import SyntheticDataset, make_probabilities

torch = pytest.importorskip("torch")

SHAPE = (10, 12, 9)


class ClassOne(ScoreStrategy):
    """Mean probability of class 1: a deterministic, easy to predict score."""

    name = "class-one"
    description = "Mean probability of class 1."

    def __init__(self):
        self.seen = []

    def voxel_scores(self, probs, ctx):
        self.seen.append((probs.dtype, torch.is_grad_enabled(), str(probs.device)))
        return probs[:, 1].float().mean(0)[None]


class TwoPools(ScoreStrategy):
    """Pools 1 and 2 score the same map, so the pool visited first wins the best spot."""

    name = "two-pools"
    description = "Two identical pools."

    def __init__(self, order=(1, 2)):
        self.order = list(order)

    def pools(self, ctx):
        return (1, 2)

    def voxel_scores(self, probs, ctx):
        score = probs[:, 1].float().mean(0)
        return torch.stack([score, score])

    def pool_order(self, pools, rng):
        return self.order


class Broken(ClassOne):
    name = "broken"

    def __init__(self, scores=None, compose_rows=None, perturbed=None, fail=False):
        super().__init__()
        self.scores, self.compose_rows, self.perturbed, self.fail = scores, compose_rows, perturbed, fail

    def voxel_scores(self, probs, ctx):
        if self.fail:
            raise RuntimeError("boom")
        return super().voxel_scores(probs, ctx) if self.scores is None else self.scores(probs)

    def perturb(self, patch_scores, ctx, rng):
        return patch_scores if self.perturbed is None else self.perturbed(patch_scores)

    def compose(self, candidates, ctx, rng):
        return super().compose(candidates, ctx, rng) if self.compose_rows is None else self.compose_rows


class Noisy(ClassOne):
    name = "noisy"

    def perturb(self, patch_scores, ctx, rng):
        return power_noise(patch_scores, 1.0, rng)


def context(**overrides) -> QueryContext:
    fields = dict(
        patch_size=(4, 4, 4), query_size=4, patches_per_case=2, seed=3, loop=1, label_values=(0, 1, 2)
    )
    fields.update(overrides)
    return QueryContext(**fields)


def cases(n=3, shape=SHAPE, dtype="float32", **extra):
    return [
        CaseInput(
            file=f"case_{i}.nii.gz",
            shape=shape,
            load_probabilities=lambda i=i: make_probabilities(shape=shape, seed=i, dtype=dtype),
            **extra,
        )
        for i in range(n)
    ]


def disjoint(patches, others=()):
    all_patches = [*others, *patches]
    return not any(a.intersects(b) for i, a in enumerate(all_patches) for b in all_patches[i + 1 :])


def test_query_is_the_global_top_k_of_per_case_greedy_candidates():
    strategy = ClassOne()
    result = run_score_query(strategy, cases(), context(), owner="tests")
    assert len(result.patches) == 4 and len(result.candidates) == 6
    assert all(p.fits_in(SHAPE) and p.size == (4, 4, 4) for p in result.patches)
    assert disjoint(result.patches)
    chosen_scores = result.candidates.score[result.chosen]
    assert sorted(chosen_scores, reverse=True) == sorted(result.candidates.score, reverse=True)[:4]
    # per case: the two best non-overlapping boxes of the case's own aggregated map
    probabilities = make_probabilities(shape=SHAPE, seed=1)
    means = box_means(probabilities[:, 1].mean(0), (4, 4, 4))
    rows = np.flatnonzero(result.candidates.case_index == 1)
    assert result.candidates.score[rows[0]] == pytest.approx(means.max(), abs=1e-6)
    assert strategy.seen == [(torch.float32, False, "cpu")] * 3


def test_probabilities_keep_their_dtype_on_the_device():
    strategy = ClassOne()
    run_score_query(strategy, cases(dtype="float16"), context(), owner="tests")
    assert {dtype for dtype, _, _ in strategy.seen} == {torch.float16}


def test_annotated_patches_are_respected():
    annotated = (Patch(file="case_0.nii.gz", start=(0, 0, 0), size=(10, 12, 5)),)
    result = run_score_query(ClassOne(), cases(), context(annotated=annotated, query_size=6))
    for patch in result.patches:
        assert not patch.intersects(annotated[0])


def test_cases_stream_one_at_a_time():
    live = []
    peak = []

    def loader(seed):
        array = make_probabilities(shape=SHAPE, seed=seed)
        live.append(seed)
        peak.append(len(live))
        weakref.finalize(array, live.remove, seed)
        return array

    pool = [
        CaseInput(file=f"c{i}.nii.gz", shape=SHAPE, load_probabilities=lambda i=i: loader(i))
        for i in range(4)
    ]
    run_score_query(ClassOne(), iter(pool), context())
    assert max(peak) == 1


class NumpyNoisy(ScoreStrategy):
    """Mean probability of class 1 in numpy, power-noised: takes the engine's case-parallel CPU path."""

    name = "numpy-noisy"
    description = "Noisy mean probability of class 1, numpy."
    accepts_numpy = True

    def __init__(self, fail_on=None):
        self.fail_on = fail_on

    def voxel_scores(self, probs, ctx):
        if self.fail_on is not None and probs[0, 0, 0, 0, 0] == self.fail_on:
            raise RuntimeError("boom")
        return np.asarray(probs[:, 1], dtype=np.float32).mean(0)[None]

    def perturb(self, patch_scores, ctx, rng):
        return power_noise(patch_scores, 1.0, rng)


def watched_pool(n, live, peak, threads, together=None, concurrent=True):
    import threading

    def loader(seed):
        if together is not None and seed < together.parties:
            together.wait(timeout=30)  # breaks unless that many cases load at the same time
        array = make_probabilities(shape=SHAPE, seed=seed)
        live.append(seed)
        peak.append(len(live))
        threads.add(threading.current_thread().name.split("_")[0])
        weakref.finalize(array, live.remove, seed)
        return array

    return [
        CaseInput(
            file=f"c{i}.nii.gz",
            shape=SHAPE,
            load_probabilities=lambda i=i: loader(i),
            concurrent_loads=concurrent,
        )
        for i in range(n)
    ]


def test_small_numpy_cases_run_side_by_side_and_query_what_one_at_a_time_queries(monkeypatch):
    import threading

    results, peaks, names = [], [], []
    for threads in (1, 3):
        monkeypatch.setenv("OMP_NUM_THREADS", str(threads))
        live, peak, seen = [], [], set()
        together = threading.Barrier(threads) if threads > 1 else None
        pool = watched_pool(7, live, peak, seen, together)
        results.append(run_score_query(NumpyNoisy(), iter(pool), context()))
        peaks.append(max(peak))
        names.append(seen)
    one, three = results
    np.testing.assert_array_equal(one.chosen, three.chosen)
    for field in ("case_index", "start", "score", "pool"):
        np.testing.assert_array_equal(getattr(one.candidates, field), getattr(three.candidates, field))
    assert one.candidates.cases == three.candidates.cases == tuple(f"c{i}.nii.gz" for i in range(7))
    assert peaks[0] == 1 and peaks[1] <= 3
    assert names == [{"MainThread"}, {"nnactive-case"}]


def test_a_case_above_the_parallel_size_runs_alone_on_every_thread(monkeypatch):
    from nnactive_core.query import engine

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(engine, "PARALLEL_CASE_BYTES", 0)
    live, peak, seen = [], [], set()
    run_score_query(NumpyNoisy(), iter(watched_pool(4, live, peak, seen)), context())
    assert max(peak) == 1 and seen == {"MainThread"}


def test_cases_side_by_side_stay_within_the_parallel_size_together(monkeypatch):
    import threading

    from nnactive_core.query import engine

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    one_case = engine.case_scratch_bytes(SHAPE, 1)
    monkeypatch.setattr(engine, "PARALLEL_CASE_BYTES", 2 * one_case)
    live, peak, seen = [], [], set()
    two_at_once = threading.Barrier(2)
    run_score_query(NumpyNoisy(), iter(watched_pool(6, live, peak, seen, together=two_at_once)), context())
    assert max(peak) <= 2 and seen == {"nnactive-case"}


def test_cases_whose_loaders_share_a_stream_stay_one_at_a_time_on_the_calling_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    live, peak, seen = [], [], set()
    run_score_query(NumpyNoisy(), iter(watched_pool(4, live, peak, seen, concurrent=False)), context())
    assert max(peak) == 1 and seen == {"MainThread"}


def test_a_case_failing_beside_others_names_the_plugin_and_the_case(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    failing = float(make_probabilities(shape=SHAPE, seed=2)[0, 0, 0, 0, 0])
    with pytest.raises(StrategyError, match="numpy-noisy.*voxel_scores failed on c2.nii.gz"):
        run_score_query(NumpyNoisy(fail_on=failing), cases_named(5), context(), owner="tests")


def cases_named(n):
    return [
        CaseInput(
            file=f"c{i}.nii.gz",
            shape=SHAPE,
            load_probabilities=lambda i=i: make_probabilities(shape=SHAPE, seed=i),
            concurrent_loads=True,
        )
        for i in range(n)
    ]


def test_pools_never_overlap_and_follow_the_pool_order():
    ctx = context(patches_per_case=2, query_size=4)
    first = run_score_query(TwoPools(order=(1, 2)), cases(n=1), ctx)
    second = run_score_query(TwoPools(order=(2, 1)), cases(n=1), ctx)
    assert disjoint(first.patches) and disjoint(second.patches)
    best = first.candidates.score.argmax()
    assert first.candidates.pool[best] == 1
    assert second.candidates.pool[second.candidates.score.argmax()] == 2
    assert first.candidates.patch(best) == second.candidates.patch(second.candidates.score.argmax())


def test_case_order_does_not_change_a_seeded_noisy_query():
    forward = run_score_query(Noisy(), cases(), context())
    backward = run_score_query(Noisy(), list(reversed(cases())), context())
    assert sorted(p.to_json()["coords"] + [p.file] for p in forward.patches) == sorted(
        p.to_json()["coords"] + [p.file] for p in backward.patches
    )
    other_seed = run_score_query(Noisy(), cases(), context(seed=4))
    assert [p.start for p in other_seed.patches] != [p.start for p in forward.patches]


def test_perturbed_scores_rank_the_candidates():
    result = run_score_query(
        Broken(perturbed=lambda s: -s), cases(n=1), context(query_size=1, patches_per_case=1)
    )
    means = box_means(make_probabilities(shape=SHAPE, seed=0)[:, 1].mean(0), (4, 4, 4))
    assert result.candidates.score[0] == pytest.approx(-means.min(), abs=1e-6)


def test_free_mask_limits_cost_free_share():
    free = np.zeros(SHAPE, dtype=bool)
    free[:, :, :6] = True
    pool = cases(n=1, load_free_mask=lambda: free)
    result = run_score_query(ClassOne(), pool, context(query_size=1, patches_per_case=1, free_overlap=0.25))
    assert all(free[p.slices].mean() <= 0.25 for p in result.patches)
    unrestricted = run_score_query(ClassOne(), pool, context(query_size=1, patches_per_case=1))
    assert free[unrestricted.patches[0].slices].mean() > 0.25


def test_candidate_features_average_the_mapped_cells():
    feature_map = np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3)
    feature_map[0, 0, 0, 0] = np.nan
    starts = np.array([[0, 0, 0], [4, 4, 4], [5, 0, 0]])
    features = candidate_features(feature_map, (2, 2, 2), starts, (4, 2, 1))
    np.testing.assert_allclose(
        features[0], [np.nanmean(feature_map[0, 0:2, 0:1, 0:1]), feature_map[1, 0:2, 0, 0].mean()]
    )
    np.testing.assert_allclose(features[1], feature_map[:, 2, 2, 2])
    np.testing.assert_allclose(features[2], feature_map[:, 2, 0, 0])


class WithFeatures(ClassOne):
    name = "with-features"
    requires_features = True


def test_features_reach_the_candidate_table():
    low = np.random.default_rng(0).normal(size=(3, 5, 6, 5)).astype(np.float32)
    pool = cases(n=2, load_features=lambda: (low, (2, 2, 2)))
    result = run_score_query(WithFeatures(), pool, context())
    assert result.candidates.features.shape == (len(result.candidates), 3)
    start = result.candidates.start[0] // 2
    np.testing.assert_allclose(
        result.candidates.features[0],
        low[:, start[0] : start[0] + 2, start[1] : start[1] + 2, start[2] : start[2] + 2].mean(
            axis=(1, 2, 3)
        ),
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="requires features"):
        run_score_query(WithFeatures(), cases(n=1), context())


def test_too_few_candidates_is_a_clear_error():
    with pytest.raises(QueryCheckError, match="only 3 non-overlapping candidates exist over 3 cases"):
        run_score_query(ClassOne(), cases(), context(patches_per_case=1, query_size=5), owner="tests")


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (Broken(scores=lambda p: torch.full((1, *SHAPE), float("nan"))), "voxel_scores returned NaN"),
        (Broken(scores=lambda p: torch.ones((2, *SHAPE))), "shape"),
        (Broken(scores=lambda p: torch.ones((1, *SHAPE), dtype=torch.int64)), "dtype"),
        (Broken(perturbed=lambda s: s * np.nan), "perturb returned NaN"),
        (Broken(compose_rows=np.array([0, 0, 1, 2])), "repeated"),
        (Broken(compose_rows=np.array([0, 1])), "exactly 4"),
        (Broken(compose_rows=np.array([0, 1, 2, 99])), "outside"),
    ],
)
def test_contract_violations_name_the_plugin(broken, message):
    with pytest.raises(QueryCheckError, match=message) as error:
        run_score_query(broken, cases(), context(), owner="my-plugin")
    assert "plugin my-plugin: strategy 'broken'" in str(error.value)


def test_a_crashing_strategy_is_named():
    with pytest.raises(
        StrategyError, match="plugin my-plugin: strategy 'broken': voxel_scores failed on case_0"
    ):
        run_score_query(Broken(fail=True), cases(), context(), owner="my-plugin")


def test_probabilities_of_the_wrong_shape_name_the_case():
    pool = [CaseInput(file="odd.nii.gz", shape=(5, 5, 5), load_probabilities=lambda: np.zeros((2, 3, 5, 5)))]
    with pytest.raises(ValueError, match="odd.nii.gz"):
        run_score_query(ClassOne(), pool, context())


def test_score_case_and_aggregate_case():
    probabilities = make_probabilities(shape=SHAPE, seed=0)
    scores = score_case(ClassOne(), probabilities, context())
    assert scores.shape == (1, *SHAPE) and scores.dtype == np.float32
    np.testing.assert_allclose(scores[0], probabilities[:, 1].mean(0), rtol=1e-6)
    assert aggregate_case(scores, context(stride=(2, 2, 2))).shape == (1, 4, 5, 3)


def test_candidate_records():
    result = run_score_query(ClassOne(), cases(), context())
    records = candidate_records(result.candidates, result.chosen)
    assert len(records) == 6 and sum(r["chosen"] for r in records) == 4
    assert set(records[0]) == {"file", "coords", "size", "score", "pool", "chosen"}
    assert records[0]["pool"] == GLOBAL_POOL


class Fixed(PlacementStrategy):
    name = "fixed"
    description = "Places given patches."

    def __init__(self, patches):
        self.patches = patches

    def place(self, oracle, ctx):
        return list(self.patches)


def oracle():
    free = np.full((8, 8, 8), 255, dtype=np.uint8)
    free[:4] = 0
    maps = {f"case_{i:03d}": np.zeros((8, 8, 8), dtype=np.uint8) for i in range(2)}
    return SyntheticDataset(maps, labels={"background": 0, "a": 1}, free_labels={"case_001": free})


def test_placement_query_accepts_valid_patches():
    patches = [
        Patch(file="case_000.nii.gz", start=(0, 0, 0), size=(4, 4, 4)),
        Patch(file="case_001.nii.gz", start=(4, 4, 4), size=(4, 4, 4)),
    ]
    result = run_placement_query(Fixed(patches), oracle(), context(query_size=2, free_overlap=0.4))
    assert result.patches == patches
    assert result.chosen.tolist() == [0, 1] and result.candidates.cases == (
        "case_000.nii.gz",
        "case_001.nii.gz",
    )
    assert candidate_records(result.candidates)[0]["score"] is None


@pytest.mark.parametrize(
    ("patches", "ctx", "message"),
    [
        ([Patch(file="case_000.nii.gz", start=(6, 0, 0), size=(4, 4, 4))], {}, "does not fit"),
        ([Patch(file="case_009.nii.gz", start=(0, 0, 0), size=(4, 4, 4))], {}, "not a pool case"),
        ([Patch(file="case_000.nii.gz", start=(0, 0, 0), size=(2, 2, 2))] * 2, {"query_size": 2}, "overlaps"),
        (
            [Patch(file="case_000.nii.gz", start=(0, 0, 0), size=(2, 2, 2))],
            {"annotated": (Patch(file="case_000.nii.gz", start=(1, 1, 1), size=(1, 1, 1)),)},
            "overlaps",
        ),
        (
            [Patch(file="case_001.nii.gz", start=(0, 0, 0), size=(4, 4, 4))],
            {"free_overlap": 0.4},
            "cost-free",
        ),
        ([], {}, "returned 0 patches"),
    ],
)
def test_placement_violations(patches, ctx, message):
    fields = {"query_size": 1, **ctx}
    with pytest.raises(QueryCheckError, match=message):
        run_placement_query(Fixed(patches), oracle(), context(**fields), owner="my-plugin")


class ThreePools(ScoreStrategy):
    """Three differently scored pools with their own quotas, visited in a seeded random order."""

    name = "three-pools"
    description = "Class 1, class 2 and the global pool."

    def pools(self, ctx):
        return (1, 2, GLOBAL_POOL)

    def voxel_scores(self, probs, ctx):
        mean = probs.float().mean(0)
        return torch.stack([mean[1], mean[2], 1 - mean[0]])

    def pool_order(self, pools, rng):
        return [pools[i] for i in rng.permutation(len(pools))]

    def case_quotas(self, ctx):
        return {1: ctx.patches_per_case, 2: 1, GLOBAL_POOL: ctx.patches_per_case}

    def compose(self, candidates, ctx, rng):
        return rng.permutation(len(candidates))[: ctx.query_size]


@settings(max_examples=15, deadline=None)
@given(
    shapes=st.lists(st.tuples(*[st.integers(2, 9)] * 3), min_size=1, max_size=3),
    patch=st.tuples(*[st.integers(1, 5)] * 3),
    stride=st.tuples(*[st.integers(1, 3)] * 3),
    patches_per_case=st.integers(1, 3),
    patch_overlap=st.sampled_from([0.0, 0.3]),
    seed=st.integers(0, 1000),
)
def test_engine_candidates_are_valid_for_any_pool(
    shapes, patch, stride, patches_per_case, patch_overlap, seed
):
    rng = np.random.default_rng(seed)
    annotated = []
    for index, shape in enumerate(shapes):
        size = rng.integers(1, np.array(shape) + 1)
        annotated.append(
            Patch(file=f"case_{index}.nii.gz", start=rng.integers(0, np.array(shape) - size + 1), size=size)
        )
    pool = [
        CaseInput(
            file=f"case_{i}.nii.gz",
            shape=shape,
            load_probabilities=lambda i=i, shape=shape: make_probabilities(shape=shape, seed=seed + i),
        )
        for i, shape in enumerate(shapes)
    ]
    ctx = context(
        patch_size=patch,
        stride=stride,
        patches_per_case=patches_per_case,
        query_size=1,
        patch_overlap=patch_overlap,
        annotated=annotated,
        seed=seed,
    )
    try:
        result = run_score_query(ThreePools(), pool, ctx)
    except QueryCheckError as error:
        # the annotated patches can leave no room at all on tiny cases
        event("no room")
        assert "only 0 non-overlapping candidates" in str(error)
        return
    table = result.candidates
    for index, shape in enumerate(shapes):
        rows = np.flatnonzero(table.case_index == index)
        patches = [table.patch(int(r)) for r in rows]
        for pool_id, quota in ((1, patches_per_case), (2, 1), (GLOBAL_POOL, patches_per_case)):
            assert (table.pool[rows] == pool_id).sum() <= quota
        for i, patch_i in enumerate(patches):
            assert patch_i.fits_in(shape)
            assert all(s % t == 0 for s, t in zip(patch_i.start, stride, strict=True))
            for other in [annotated[index], *patches[:i]]:
                assert patch_i.intersection_volume(other) <= patch_overlap * patch_i.volume
    assert len(result.patches) == 1
