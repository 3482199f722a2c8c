"""The query step: a strategy, through the patch engine, turns the current models (or the oracle) into
the next loop file.

The starting budget is loop 0's query (placement on the oracle, nothing annotated yet); the query made
after training loop k creates ``loop_{k+1}.json`` and sees ``QueryContext.loop = k + 1``. Everything
random comes from ``QueryContext.rng``, seeded by the experiment seed and that loop index.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from nnactive_core.experiment.config import DEFAULT_BUDGET_METRIC, ExperimentConfig
from nnactive_core.io import atomic_write_json
from nnactive_core.patches.patch import Patch, loop_file_name, save_loop
from nnactive_core.strategies.api import PlacementStrategy, QueryContext, ScoreStrategy

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset
    from nnactive_core.plugins import Registry
    from nnactive_core.query.budget import Budget
    from nnactive_core.query.engine import CaseInput, QueryResult

Pool = Callable[[bool], Iterable["CaseInput"]]
"""``pool(requires_features)``: the pool's ensemble predictions, one :class:`CaseInput` per case,
made only when the query's strategy scores them."""


class QueryStepError(RuntimeError):
    """A strategy that cannot be used where it is configured."""


def query_context(
    config: ExperimentConfig,
    dataset: Dataset,
    *,
    loop: int,
    annotated: Sequence[Patch],
    device: str = "cpu",
    query_size: int | None = None,
) -> QueryContext:
    return QueryContext(
        patch_size=config.patch_size,
        query_size=config.query_size if query_size is None else query_size,
        patches_per_case=config.per_case,
        seed=config.seed,
        loop=loop,
        label_values=tuple(sorted(dataset.labels.values())),
        background=dataset.background,
        stride=config.agg_stride,
        patch_overlap=config.patch_overlap,
        free_overlap=config.free_overlap,
        query_steps=config.query_steps,
        annotated=tuple(annotated),
        device=device,
    )


def resolve_strategy(registry: Registry, name: str, role: str = "strategy"):
    """The registered strategy and the distribution name that owns it; unknown names raise the
    registry's message (which lists the installed ones)."""
    strategy = registry.get("strategy", name)
    owner = registry.owner("strategy", name).name
    if role == "starting budget" and not isinstance(strategy, PlacementStrategy):
        raise QueryStepError(
            f"starting budget {name!r} ({owner}) needs a trained model; a starting budget must place "
            "patches from the oracle (a placement strategy such as random-label2-all-classes)"
        )
    return strategy, owner


def query_budget(config: ExperimentConfig, dataset: Dataset, available: float) -> Budget:
    """The budget of one query: ``available`` of the config's budget metric."""
    from nnactive_core.costs.accounting import registered_cost_metrics
    from nnactive_core.query.budget import Budget, budget_metric

    metric = budget_metric(
        config.budget_metric, registered_cost_metrics(), dict(dataset.labels), dataset.background
    )
    return Budget(metric=metric, column=config.budget_metric, available=float(available))


def _budgeted(run: Callable[[Budget | None, int | None], QueryResult], budget: Budget) -> QueryResult:
    """``run(budget, query_size)``: a budget in patches is a query of that many (the established
    path, no estimates needed); any other metric is filled by the engine."""
    import numpy as np

    if budget.column == DEFAULT_BUDGET_METRIC:
        result = run(None, max(math.floor(budget.available + 1e-9), 0))
        return attrs.evolve(result, estimates=np.ones(len(result.candidates)), planned=budget.available)
    return run(budget, None)


def starting_budget(
    config: ExperimentConfig, dataset: Dataset, registry: Registry, device: str = "cpu"
) -> QueryResult:
    """Loop 0: ``starting_budget_size`` patches placed on the oracle, seeded by the experiment seed;
    with a ``starting_query_budget``, as many as that pays for."""
    from nnactive_core.query.engine import run_placement_query

    strategy, owner = resolve_strategy(registry, config.starting_budget, "starting budget")

    def run(budget: Budget | None, size: int | None) -> QueryResult:
        ctx = query_context(
            config, dataset, loop=0, annotated=(), device=device, query_size=size or config.sbs
        )
        return run_placement_query(strategy, dataset, ctx, owner, budget)

    if config.starting_query_budget is None:
        return run(None, None)
    return _budgeted(run, query_budget(config, dataset, config.starting_query_budget))


def run_query(
    config: ExperimentConfig,
    dataset: Dataset,
    registry: Registry,
    *,
    loop: int,
    annotated: Sequence[Patch],
    pool: Pool | None,
    device: str = "cpu",
    carry: float = 0.0,
) -> QueryResult:
    """The query that creates ``loop_{loop}.json``. The strategy is resolved here, once: a score
    strategy gets the cases ``pool`` predicts, a placement strategy places on the oracle (and
    ``pool`` is never called). A budgeted experiment spends ``query_budget`` plus the ``carry`` left
    by the loops before."""
    from nnactive_core.query.engine import run_placement_query, run_score_query

    strategy, owner = resolve_strategy(registry, config.strategy)
    if isinstance(strategy, ScoreStrategy) and pool is None:
        raise QueryStepError(f"strategy {config.strategy!r} ({owner}) needs the pool's predictions")

    def run(budget: Budget | None, size: int | None) -> QueryResult:
        ctx = query_context(config, dataset, loop=loop, annotated=annotated, device=device, query_size=size)
        if isinstance(strategy, ScoreStrategy):
            return run_score_query(strategy, pool(bool(strategy.requires_features)), ctx, owner, budget)
        return run_placement_query(strategy, dataset, ctx, owner, budget)

    if not config.budgeted:
        return run(None, None)
    amount = config.query_budget if config.query_budget is not None else config.query_size
    return _budgeted(run, query_budget(config, dataset, amount + carry))


def save_query(raw: Path, query_file: Path, loop: int, result: QueryResult, strategy: str) -> None:
    """``query_file`` (every candidate with its score, chosen or not; it belongs to the loop whose
    models made the query), then the new loop file in ``raw``: the loop file comes last, so its
    existence means the query is complete."""
    from nnactive_core.query.engine import candidate_records

    payload = {
        "strategy": strategy,
        "creates": loop_file_name(loop),
        "candidates": candidate_records(result.candidates, result.chosen, result.estimates),
    }
    if result.planned is not None:
        payload["budget"] = {"planned": result.planned, "estimated": estimated_total(result)}
    atomic_write_json(query_file, payload)
    save_loop(raw, loop, result.patches)


def estimated_total(result: QueryResult) -> float:
    """The estimated cost of a budgeted query's chosen patches."""
    return float(sum(float(result.estimates[int(row)]) for row in result.chosen))
