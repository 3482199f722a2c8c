"""Cost accounting: sum the registered cost metrics over a loop's patches and over all loops so far.

The loop runner writes the result of :func:`loop_costs` as ``loop_XXX/costs.json``::

    {"loop": {column: value}, "cumulative": {column: value}, "pool": {column: value}}

``loop`` covers the patches newly annotated in that loop, ``cumulative`` all patches of loops
``0..XXX`` and ``pool`` the full-pool totals of the metrics measured in voxels (every pool case as one
whole-image patch), from which the analysis derives "% of the pool's foreground voxels" and friends.
The pool totals are computed once per dataset and metric set and cached as JSON.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from nnactive_core.costs.api import CostMetric
from nnactive_core.datasets.api import Dataset
from nnactive_core.io import JsonFileError, atomic_write_json, read_json
from nnactive_core.patches.patch import Patch

POOL_UNIT = "voxels"
POOL_CACHE_NAME = "nnactive_pool_costs.json"


def registered_cost_metrics() -> list[CostMetric]:
    """Every cost metric the installed plugins provide, sorted by name."""
    from nnactive_core.plugins import registry

    loaded = registry()
    return [loaded.get("cost metric", name) for name in loaded.names("cost metric")]


def _measure_one(patch: Patch, labels_in_patch, dataset: Dataset, metrics: Sequence[CostMetric]) -> dict:
    columns: dict[str, float] = {}
    owners: dict[str, str] = {}
    for metric in metrics:
        try:
            measured = metric.measure(patch, labels_in_patch, dict(dataset.labels), dataset.background)
        except Exception as error:
            raise RuntimeError(f"cost metric {metric.name!r} failed on {patch}: {error}") from error
        for column, value in measured.items():
            if column in owners:
                raise ValueError(
                    f"cost metrics {owners[column]!r} and {metric.name!r} both write column {column!r}"
                )
            owners[column] = metric.name
            columns[column] = value
    return columns


def measure_patches(
    patches: Sequence[Patch], dataset: Dataset, metrics: Sequence[CostMetric]
) -> list[dict[str, float]]:
    """The metrics' columns for each patch, in the order given. Each case's labels are read once."""
    by_case: dict[str, list[int]] = defaultdict(list)
    for index, patch in enumerate(patches):
        by_case[dataset.case_of_file(patch.file)].append(index)
    measured: list[dict[str, float]] = [{} for _ in patches]
    for case, indices in by_case.items():
        labels = dataset.read_labels(case, "pool")
        for index in indices:
            patch = patches[index]
            if not patch.fits_in(labels.shape):
                raise ValueError(
                    f"patch {patch.start}+{patch.size} on {patch.file!r} does not fit its case of shape "
                    f"{tuple(labels.shape)}"
                )
            measured[index] = _measure_one(patch, labels[patch.slices], dataset, metrics)
    return measured


def _sum(rows: Sequence[Mapping[str, float]], columns: Sequence[str]) -> dict[str, float]:
    totals = dict.fromkeys(columns, 0)
    for row in rows:
        for column, value in row.items():
            totals[column] += value
    return totals


def loop_costs(
    loops: Sequence[Sequence[Patch]],
    dataset: Dataset,
    metrics: Sequence[CostMetric],
    pool: Mapping[str, float] | None = None,
) -> dict[str, dict[str, float]]:
    """The ``costs.json`` payload of the last loop in ``loops`` (patches per loop, ``loop_000`` first).

    ``pool`` (from :func:`pool_totals`) is stored alongside when given."""
    if not loops:
        raise ValueError("loop_costs needs the patches of at least one loop")
    everything = [patch for loop in loops for patch in loop]
    rows = measure_patches(everything, dataset, metrics)
    columns = sorted({column for row in rows for column in row})
    payload = {
        "loop": _sum(rows[len(everything) - len(loops[-1]) :], columns),
        "cumulative": _sum(rows, columns),
    }
    if pool is not None:
        payload["pool"] = dict(pool)
    return payload


def write_costs(path: Path, payload: Mapping) -> None:
    atomic_write_json(Path(path), dict(payload))


def _cache_key(dataset: Dataset, metrics: Sequence[CostMetric]) -> dict:
    cases = sorted(dataset.pool_cases())
    digest = hashlib.sha1("\n".join(cases).encode()).hexdigest()
    return {"dataset": dataset.name, "cases": digest, "metrics": sorted(m.name for m in metrics)}


def pool_totals(
    dataset: Dataset, metrics: Sequence[CostMetric], cache_dir: Path | None = None
) -> dict[str, float]:
    """Totals over the whole pool of the metrics measured in voxels (each case as one whole patch).

    Cached as ``nnactive_pool_costs.json`` in ``cache_dir`` (named after the dataset there) or, when
    None, in the dataset's raw folder; a cache for another case list or metric set is recomputed."""
    voxel_metrics = [metric for metric in metrics if metric.unit == POOL_UNIT]
    key = _cache_key(dataset, voxel_metrics)
    cache = (
        Path(cache_dir) / f"{dataset.name}__{POOL_CACHE_NAME}"
        if cache_dir is not None
        else Path(dataset.root) / POOL_CACHE_NAME
    )
    if cache.is_file():
        try:
            cached = read_json(cache, expect=dict)
            if cached.get("key") == key:
                return dict(cached["totals"])
        except (JsonFileError, KeyError, TypeError):
            pass  # a damaged cache is only a cache: recompute and overwrite it
    whole = []
    for case in dataset.pool_cases():
        file = f"{case}{dataset.file_ending}"
        whole.append(Patch(file=file, start=(0, 0, 0), size=dataset.shape(case)))
    rows = measure_patches(whole, dataset, voxel_metrics)
    totals = _sum(rows, sorted({column for row in rows for column in row}))
    try:
        atomic_write_json(cache, {"key": key, "totals": totals})
    except OSError:
        pass  # a read-only dataset folder: the totals are still right, only not cached
    return totals
