"""Budgets in any cost metric: a query takes candidates in the strategy's order until the next one no
longer fits.

A budgeted query (``ExperimentConfig.budget_metric`` and ``query_budget``) spends an amount of one
cost column instead of a number of patches. The strategy is asked, as always, for a query of some
size; the engine walks its order, adding each candidate's cost, and stops before the first candidate
that would exceed the budget. Where every candidate of that answer fits and more could exist, it asks
the strategy again for twice as many (``request(n)``), so no strategy changes:

- score strategies compose a query of ``n`` rows from the same candidate table, with the same
  ``("compose",)`` random stream;
- placement strategies (the random family, plugins) place ``n`` patches from the same seeded context.

Both are deterministic in the seed, so a budgeted experiment is as reproducible as any other. What is
left of the budget (positive or, where an estimate was low, negative) carries to the next query.

Costs before annotation are estimates (:meth:`CostMetric.estimate`, from the model's probabilities
inside the patch); after annotation the real cost is charged and the gap recorded
(:func:`nnactive_core.experiment.records.write_costs`). Placement strategies place from the oracle and
have no model probabilities, so their candidates are priced at their measured cost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

import attrs
import numpy as np

from nnactive_core.costs.api import CostMetric
from nnactive_core.patches.patch import Patch

RELATIVE_SLACK = 1e-9
"""A candidate fits when the running total exceeds the budget by at most this share (float sums)."""

Answer = TypeVar("Answer")


class BudgetError(ValueError):
    """A budget metric that cannot be used: unknown, or without the estimate a budget needs."""


@attrs.frozen(kw_only=True)
class Budget:
    """What one query may spend: ``available`` of ``column``, which ``metric`` writes."""

    metric: CostMetric
    column: str
    available: float

    def estimate(self, patch: Patch, probabilities: np.ndarray | None) -> float:
        """The metric's estimate of ``column`` for a patch not annotated yet."""
        estimated = self.metric.estimate(patch, probabilities)
        if estimated is None or self.column not in estimated:
            raise BudgetError(
                f"cost metric {self.metric.name!r} has no estimate of {self.column!r} before annotation; "
                "it cannot be the budget_metric of a query made from a model (it needs "
                "CostMetric.estimate(patch, probabilities))"
            )
        return float(estimated[self.column])


def metric_columns(metric: CostMetric, label_values: Mapping[str, int], background: int) -> tuple[str, ...]:
    """The columns ``metric`` writes, from measuring one background voxel."""
    probe = Patch(file="probe", start=(0, 0, 0), size=(1, 1, 1))
    labels = np.full((1, 1, 1), background, dtype=np.int16)
    return tuple(metric.measure(probe, labels, dict(label_values), background))


def budget_metric(
    column: str, metrics: Sequence[CostMetric], label_values: Mapping[str, int], background: int
) -> CostMetric:
    """The registered metric that writes ``column``; an unknown column names the known ones."""
    known: list[str] = []
    for metric in metrics:
        columns = metric_columns(metric, label_values, background)
        if column in columns:
            return metric
        known.extend(columns)
    raise BudgetError(
        f"experiment config field 'budget_metric': no registered cost metric writes a column "
        f"{column!r}; known columns: {', '.join(sorted(known))}"
    )


def fitting(costs: Sequence[float], available: float) -> int:
    """How many leading ``costs`` fit into ``available`` together: the count before the first one
    that would exceed it."""
    slack = RELATIVE_SLACK * max(abs(available), 1.0)
    spent = 0.0
    for count, cost in enumerate(costs):
        spent += float(cost)
        if spent > available + slack:
            return count
    return len(costs)


@attrs.frozen
class Offer(Generic[Answer]):
    """One answer of a strategy to ``request(n)``: its candidates' ``costs`` in the strategy's order,
    and whether it holds everything the strategy can offer (asking for more gives no more)."""

    answer: Answer
    costs: Sequence[float]
    complete: bool


def fill(request: Callable[[int], Offer[Answer] | None], available: float, first: int) -> tuple[Answer, int]:
    """Ask ``request`` for ``first`` candidates, then twice as many while every one fits and more
    exist; returns the last answer and how many of its leading candidates the budget takes.
    ``request(n)`` returns None where the strategy cannot give ``n`` (the previous answer stands);
    the first request must succeed."""
    size = max(int(first), 1)
    offer = request(size)
    if offer is None:
        raise BudgetError(f"the strategy could not offer {size} candidates")
    while True:
        taken = fitting(offer.costs, available)
        if taken < len(offer.costs) or offer.complete:
            return offer.answer, taken
        size *= 2
        bigger = request(size)
        if bigger is None:
            return offer.answer, taken
        offer = bigger
