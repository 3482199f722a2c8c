import json

import pytest

from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.querying import (
    QueryStepError,
    query_context,
    resolve_strategy,
    run_query,
    save_query,
    starting_budget,
)
from nnactive_core.patches.patch import Patch, load_loop
from nnactive_core.plugins import UnknownNameError, registry
from nnactive_core.testing.synthetic import SyntheticDataset


def config(**changes) -> ExperimentConfig:
    fields = dict(
        dataset="Dataset999_Synthetic",
        patch_size=(4, 4, 4),
        query_size=5,
        query_steps=4,
        strategy="random",
        starting_budget="random",
        seed=11,
        agg_stride=2,
        patches_per_case=3,
        free_overlap=0.2,
    )
    fields.update(changes)
    return ExperimentConfig(**fields)


def test_the_context_carries_the_config_and_the_loop():
    dataset = SyntheticDataset.generate(cases=3, shape=(12, 12, 12))
    annotated = [Patch(file="case_000.nii.gz", start=(0, 0, 0), size=(4, 4, 4))]
    ctx = query_context(config(), dataset, loop=2, annotated=annotated, device="cpu")
    assert (ctx.loop, ctx.seed, ctx.query_size, ctx.patches_per_case, ctx.query_steps) == (2, 11, 5, 3, 4)
    assert ctx.label_values == (0, 1, 2) and ctx.stride == (2, 2, 2) and ctx.free_overlap == 0.2
    assert ctx.annotated == tuple(annotated)
    assert (
        query_context(config(starting_budget_size=7), dataset, loop=0, annotated=(), query_size=7).query_size
        == 7
    )


def test_unknown_strategies_and_score_starting_budgets_are_refused():
    with pytest.raises(UnknownNameError, match="strategy 'nope' is not recognized"):
        resolve_strategy(registry(), "nope")
    if "pred_entropy" in registry().names("strategy"):
        with pytest.raises(QueryStepError, match="a starting budget must place patches from the oracle"):
            resolve_strategy(registry(), "pred_entropy", "starting budget")


def unused_pool(requires_features):
    raise AssertionError("a placement strategy's query must not predict the pool")


def test_starting_budget_and_query_are_seeded_and_avoid_annotated_patches(tmp_path):
    dataset = SyntheticDataset.generate(cases=4, shape=(12, 12, 12))
    first = starting_budget(config(starting_budget_size=6), dataset, registry()).patches
    assert first == starting_budget(config(starting_budget_size=6), dataset, registry()).patches
    assert len(first) == 6
    result = run_query(config(), dataset, registry(), loop=1, annotated=first, pool=unused_pool)
    assert len(result.patches) == 5
    assert not any(a.intersects(b) for a in result.patches for b in first)
    save_query(tmp_path / "raw", tmp_path / "loop_000" / "query.json", 1, result, "random")
    assert load_loop(tmp_path / "raw" / "loop_001.json") == result.patches
    query = json.loads((tmp_path / "loop_000" / "query.json").read_text())
    assert query["creates"] == "loop_001.json" and sum(c["chosen"] for c in query["candidates"]) == 5


def test_score_strategies_need_the_pool_predictions():
    if "pred_entropy" not in registry().names("strategy"):
        pytest.skip("nnactive-strategies-bald is not installed")
    dataset = SyntheticDataset.generate(cases=2, shape=(12, 12, 12))
    with pytest.raises(QueryStepError, match="needs the pool's predictions"):
        run_query(config(strategy="pred_entropy"), dataset, registry(), loop=1, annotated=(), pool=None)


def test_a_budget_in_patches_picks_exactly_what_the_query_size_picks(tmp_path):
    dataset = SyntheticDataset.generate(cases=4, shape=(12, 12, 12))
    plain = run_query(config(), dataset, registry(), loop=1, annotated=(), pool=unused_pool)
    budgeted = run_query(config(query_budget=5), dataset, registry(), loop=1, annotated=(), pool=unused_pool)
    assert budgeted.patches == plain.patches and budgeted.planned == 5
    save_query(tmp_path / "raw", tmp_path / "query.json", 1, budgeted, "random")
    assert json.loads((tmp_path / "query.json").read_text())["budget"] == {"planned": 5.0, "estimated": 5.0}
    save_query(tmp_path / "raw", tmp_path / "plain.json", 1, plain, "random")
    recorded = json.loads((tmp_path / "plain.json").read_text())
    assert "budget" not in recorded and all("estimate" not in c for c in recorded["candidates"])


def test_a_budget_in_foreground_voxels_spends_the_query_budget_and_the_carry():
    dataset = SyntheticDataset.generate(cases=4, shape=(12, 12, 12))
    budget = config(budget_metric="foreground_voxels", query_budget=100)
    result = run_query(budget, dataset, registry(), loop=1, annotated=(), pool=unused_pool, carry=-40)
    assert result.planned == 60
    assert float(result.estimates[result.chosen].sum()) <= 60
    richer = run_query(budget, dataset, registry(), loop=1, annotated=(), pool=unused_pool, carry=200)
    assert richer.planned == 300 and float(richer.estimates.sum()) > float(result.estimates.sum())
    start = starting_budget(
        config(budget_metric="foreground_voxels", query_budget=1, starting_query_budget=50),
        dataset,
        registry(),
    )
    assert start.planned == 50 and float(start.estimates.sum()) <= 50
