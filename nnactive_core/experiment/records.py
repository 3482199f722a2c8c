"""The records a loop keeps beside its results: which classes each case has annotated (for the
class-ensuring splits) and what the annotated patches cost (``loop_XXX/costs.json``), both rebuilt
from the loop files and the oracle, so the step that writes them can be repeated; and the seconds
each step of a loop took (``loop_XXX/timings.json``).

A budgeted experiment's ``costs.json`` also has a ``budget`` section: the metric, what the query that
made the loop could spend (``planned``), what it estimated its patches to cost (``estimated``), what
annotating them cost (``charged``, the loop's column) and what carries to the next query
(``carry`` = planned - charged). Loop 0 without a ``starting_query_budget`` bought patches, not
budget: it records its charge and carries nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import numpy as np

from nnactive_core.experiment.layout import ExperimentLayout
from nnactive_core.experiment.oracle import partial_labels, patches_by_file
from nnactive_core.io import JsonFileError, atomic_write_json, read_json
from nnactive_core.patches.patch import Patch

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset
    from nnactive_core.experiment.config import ExperimentConfig


def read_annotated_classes(layout: ExperimentLayout) -> dict[str, list[int]]:
    path = layout.annotated_classes_file
    return read_json(path, expect=dict) if path.is_file() else {}


def record_annotated_classes(
    layout: ExperimentLayout,
    dataset: Dataset,
    patches: Sequence[Patch],
    *,
    replace: bool = False,
    cases: Sequence[str] | None = None,
) -> dict[str, list[int]]:
    """Case -> label values annotated in it (``ignore`` excluded), for the class-ensuring splits.
    ``patches`` are *all* annotated patches; only ``cases`` (default: every case with a patch) are
    recomputed, from the oracle, so the step that calls this can be repeated."""
    known = {} if replace else read_annotated_classes(layout)
    grouped = patches_by_file(patches)
    targets = cases if cases is not None else sorted({dataset.case_of_file(f) for f in grouped})
    for case in targets:
        file = case + dataset.file_ending
        labels = partial_labels(
            dataset.read_labels(case),
            grouped.get(file, []),
            dataset.ignore_label,
            dataset.read_free_labels(case),
        )
        values = [int(v) for v in np.unique(labels) if v != dataset.ignore_label]
        if values:
            known[case] = values
        else:
            known.pop(case, None)
    atomic_write_json(layout.annotated_classes_file, dict(sorted(known.items())))
    return known


def write_costs(
    layout: ExperimentLayout,
    dataset: Dataset,
    loops: Sequence[Sequence[Patch]],
    config: ExperimentConfig | None = None,
) -> None:
    """``loop_XXX/costs.json`` of the last of ``loops`` (patches per loop, loop 0 first), with the
    budget section where ``config`` is budgeted."""
    from nnactive_core.costs.accounting import loop_costs, pool_totals, registered_cost_metrics, write_costs

    metrics = registered_cost_metrics()
    pool = pool_totals(dataset, metrics, cache_dir=layout.group)
    payload = loop_costs(loops, dataset, metrics, pool)
    if config is not None and config.budgeted:
        payload["budget"] = budget_record(layout, config, len(loops) - 1, payload["loop"])
    write_costs(layout.costs_file(len(loops) - 1), payload)


def budget_record(layout: ExperimentLayout, config: ExperimentConfig, loop: int, charges: dict) -> dict:
    """The ``budget`` section of loop ``loop``'s costs (see the module documentation)."""
    column = config.budget_metric
    if column not in charges:
        raise ValueError(f"experiment config field 'budget_metric': no cost column {column!r} was measured")
    charged = float(charges[column])
    if loop == 0:
        planned = config.starting_query_budget
        estimated = None if planned is None else charged
    else:
        query = read_json(layout.query_file(loop - 1), expect=dict).get("budget", {})
        planned, estimated = query.get("planned"), query.get("estimated")
    carry = 0.0 if planned is None else float(planned) - charged
    return {"metric": column, "planned": planned, "estimated": estimated, "charged": charged, "carry": carry}


def budget_carry(layout: ExperimentLayout, loop: int) -> float:
    """What loop ``loop`` left of its budget for the next query (0 where it recorded none)."""
    try:
        costs = read_json(layout.costs_file(loop), expect=dict)
    except JsonFileError:
        return 0.0
    return float(costs.get("budget", {}).get("carry", 0.0))


@attrs.define
class LoopTimings:
    """``loop_XXX/timings.json``: seconds per step, training and prediction time inside them and
    how many cases were preprocessed; a repeated step replaces its entry."""

    path: Path
    values: dict = attrs.field(factory=dict)

    @classmethod
    def load(cls, path: Path) -> LoopTimings:
        try:
            return cls(path=path, values=read_json(path, expect=dict))
        except JsonFileError:
            return cls(path=path)

    def record(self, **values) -> None:
        self.values.update(values)
        atomic_write_json(self.path, self.values)


def training_seconds(layout: ExperimentLayout, loop: int) -> float:
    """The loop's training time summed over its folds (a resumed loop included)."""
    per_fold = LoopTimings.load(layout.timings_file(loop)).values.get("training_seconds_per_fold", {})
    return float(sum(per_fold.values())) if isinstance(per_fold, dict) else 0.0


def reported_costs(layout: ExperimentLayout, loop: int) -> dict:
    """``costs.json`` of loop ``loop`` for a report: empty where it cannot be read."""
    try:
        return read_json(layout.costs_file(loop), expect=dict)
    except JsonFileError:
        return {}
