"""Budget filling: candidates in the strategy's order until the next one no longer fits."""

from __future__ import annotations

import numpy as np
import pytest

from nnactive_core.costs.accounting import measure_patches
from nnactive_core.costs.api import CostMetric
from nnactive_core.costs.basic import BASIC_COST_METRICS, ForegroundVoxelCount
from nnactive_core.patches.patch import Patch
from nnactive_core.query.budget import Budget, BudgetError, Offer, budget_metric, fill, fitting
from nnactive_core.query.engine import CaseInput, run_placement_query, run_score_query
from nnactive_core.strategies.api import ScoreStrategy
from nnactive_core.strategies.random_uniform import UniformRandom
from nnactive_core.testing.synthetic import SyntheticDataset, make_probabilities, make_query_context

LABELS = {"background": 0, "a": 1, "b": 2}


def test_an_exact_fill_takes_every_candidate():
    assert fitting([2, 3, 5], 10) == 3
    assert fitting([0.1] * 10, 1.0) == 10  # float sums that land on the budget still fit


def test_a_candidate_bigger_than_the_remaining_budget_ends_the_fill():
    assert fitting([4, 4, 4, 1], 10) == 2  # the third does not fit; the cheap fourth is not taken
    assert fitting([11, 1], 10) == 0
    assert fitting([3], -2) == 0  # a debt carried from an underestimated loop buys nothing


def counting(complete_at: int, costs=lambda n: [1.0] * n):
    asked = []

    def request(size: int):
        asked.append(size)
        size = min(size, complete_at)
        return Offer(list(range(size)), costs(size), complete=size == complete_at)

    return request, asked


def test_the_fill_asks_for_more_while_everything_fits():
    request, asked = counting(complete_at=100)
    answer, taken = fill(request, available=10, first=4)
    assert asked == [4, 8, 16] and taken == 10 and answer[:taken] == list(range(10))


def test_the_fill_stops_when_the_strategy_has_no_more():
    request, asked = counting(complete_at=6)
    answer, taken = fill(request, available=50, first=4)
    assert asked == [4, 8] and taken == 6


def test_a_strategy_that_cannot_give_more_keeps_the_last_answer():
    def request(size):
        return None if size > 4 else Offer(list(range(size)), [1.0] * size, complete=False)

    assert fill(request, available=50, first=4) == ([0, 1, 2, 3], 4)
    with pytest.raises(BudgetError, match="could not offer 4"):
        fill(lambda size: None, available=5, first=4)


def test_budget_metrics_are_found_by_column_and_must_estimate():
    assert isinstance(budget_metric("foreground_voxels", BASIC_COST_METRICS, LABELS, 0), ForegroundVoxelCount)
    with pytest.raises(BudgetError, match="no registered cost metric writes a column 'nope'; known columns:"):
        budget_metric("nope", BASIC_COST_METRICS, LABELS, 0)
    class_voxels = budget_metric("voxels_class_a", BASIC_COST_METRICS, LABELS, 0)
    budget = Budget(metric=class_voxels, column="voxels_class_a", available=10)
    with pytest.raises(BudgetError, match="cost metric 'class-voxels' has no estimate of 'voxels_class_a'"):
        budget.estimate(Patch(file="c", start=(0, 0, 0), size=(1, 1, 1)), np.ones((3, 1, 1, 1)))


class TopClassOne(ScoreStrategy):
    name = "class-one"
    description = "Mean probability of class 1."
    accepts_numpy = True

    def voxel_scores(self, probs, ctx):
        return probs[:, 1].astype(np.float32).mean(0)[None]


class Halved(CostMetric):
    """Estimates half of what it charges: foreground voxels, underestimated."""

    name = "halved"
    description = "test"
    unit = "voxels"

    def measure(self, patch, labels_in_patch, label_values, background):
        return {"halved": float(np.count_nonzero(labels_in_patch != background))}

    def estimate(self, patch, probabilities):
        return {"halved": float(np.sum(1.0 - probabilities[0])) / 2}


def pool(n=3, shape=(10, 12, 9)):
    return [
        CaseInput(
            file=f"case_{i}.nii.gz",
            shape=shape,
            load_probabilities=lambda i=i: make_probabilities(shape=shape, seed=i),
        )
        for i in range(n)
    ]


def score_query(available, metric=None):
    metric = metric or ForegroundVoxelCount()
    column = "foreground_voxels" if isinstance(metric, ForegroundVoxelCount) else metric.name
    ctx = make_query_context(patch_size=(4, 4, 4), query_size=2, patches_per_case=4, label_values=(0, 1, 2))
    budget = Budget(metric=metric, column=column, available=available)
    return run_score_query(TopClassOne(), pool(), ctx, budget=budget)


def test_a_score_query_takes_the_composition_order_until_the_next_does_not_fit():
    unbudgeted = run_score_query(
        TopClassOne(),
        pool(),
        make_query_context(patch_size=(4, 4, 4), query_size=12, patches_per_case=4, label_values=(0, 1, 2)),
    )
    estimates = score_query(1e9).estimates
    order_costs = estimates[unbudgeted.chosen]
    available = float(order_costs[:5].sum()) + 0.5 * float(order_costs[5])
    result = score_query(available)
    assert list(result.chosen) == list(unbudgeted.chosen[:5])  # top-k order, cut where the 6th overflows
    assert result.planned == available
    assert float(result.estimates[result.chosen].sum()) <= available
    assert score_query(available).patches == result.patches  # seeded: the same query again


def test_estimates_come_from_the_probabilities_inside_each_candidate():
    result = score_query(1e9)
    case = 0
    row = int(np.flatnonzero(result.candidates.case_index == case)[0])
    patch = result.candidates.patch(row)
    inside = make_probabilities(shape=(10, 12, 9), seed=case)[(slice(None), slice(None), *patch.slices)]
    expected = float(np.sum(1.0 - inside.mean(axis=0)[0]))
    assert result.estimates[row] == pytest.approx(expected, rel=1e-5)


def test_estimates_that_differ_from_charges_are_both_kept():
    result = score_query(200.0, metric=Halved())
    dataset = SyntheticDataset.generate(cases=3, shape=(10, 12, 9))
    dataset = SyntheticDataset(
        {f"case_{i}": dataset.read_labels(f"case_{i:03d}") for i in range(3)}, labels=LABELS
    )
    charged = sum(row["halved"] for row in measure_patches(result.patches, dataset, [Halved()]))
    estimated = float(result.estimates[result.chosen].sum())
    assert estimated <= 200.0
    assert charged != pytest.approx(estimated)


def test_a_placement_query_fills_the_budget_with_measured_costs():
    dataset = SyntheticDataset.generate(cases=4, shape=(16, 16, 16))
    ctx = make_query_context(dataset, patch_size=(4, 4, 4), query_size=2, loop=0)
    budget = Budget(metric=ForegroundVoxelCount(), column="foreground_voxels", available=150.0)
    result = run_placement_query(UniformRandom(), dataset, ctx, budget=budget)
    measured = [row["foreground_voxels"] for row in measure_patches(result.patches, dataset, [budget.metric])]
    assert list(result.estimates) == measured
    assert sum(measured) <= 150.0 and len(result.patches) > 2  # more than one batch was asked for
    unbudgeted = run_placement_query(UniformRandom(), dataset, ctx)
    assert len(unbudgeted.patches) == 2 and unbudgeted.estimates is None
    assert run_placement_query(UniformRandom(), dataset, ctx, budget=budget).patches == result.patches
