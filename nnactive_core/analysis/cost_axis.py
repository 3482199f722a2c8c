"""Dice against any recorded cost metric, AUBC over it and the ranking at equal cost.

The budget axis of the main analysis is the cumulative number of patches. Any other cost column a run
recorded (``costs.json``'s ``cumulative`` section: ``foreground_voxels``, ``annotation_seconds``, ...)
can be the x axis instead (``nnactive analyze --x-metric``). Runs then differ in where their loops
land on that axis (two seeds' patches cost different amounts), so curves cannot be averaged loop by
loop. Each run's curve is linearly interpolated onto a *common cost grid*: :data:`GRID_POINTS`
equally spaced costs from the largest first cost to the smallest last cost over the setting's complete
runs (the range every run covers; nothing is extrapolated). On that grid:

- the curve of a strategy is the mean over its seeds per grid cost, with the 95% t band
  (:mod:`nnactive_core.analysis.curves`);
- ``aubc_<metric>`` of a run is the normalised trapezoid area of its interpolated curve
  (:func:`nnactive_core.analysis.aubc.aubc`), the same range for every run, so strategies compare
  at equal cost;
- ``final_<metric>`` is its Dice at the grid's last cost, which every run reached;
- the ranking orders strategies by mean AUBC over the grid (rank 1 = best).

A budgeted experiment's loops also record what the query estimated its patches would cost and what
they were charged; :func:`budget_gaps` turns those into a table per loop, plotted as charged over
estimated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nnactive_core.analysis.aubc import aubc
from nnactive_core.analysis.collect import CUMULATIVE_PREFIX, MEAN_DICE, ExperimentResults
from nnactive_core.analysis.curves import ci_half_width

GRID_POINTS = 20
SCALES = {"annotation_seconds": (3600.0, "Estimated annotation time (hours, cumulative)")}
"""Metric -> (divisor, axis label) for plots; other metrics are drawn as recorded."""


def x_column(metric: str) -> str:
    return f"{CUMULATIVE_PREFIX}{metric}"


def axis_label(metric: str) -> str:
    return SCALES.get(metric, (1.0, f"{metric} (cumulative)"))[1]


def common_grid(runs, metric: str, points: int = GRID_POINTS) -> np.ndarray:
    """The costs every run covers, ``points`` of them; empty where the runs share no range."""
    column = x_column(metric)
    if not runs:
        return np.zeros(0)
    low = max(float(run[column].min()) for _, run in runs)
    high = min(float(run[column].max()) for _, run in runs)
    if not high > low:
        return np.zeros(0)
    return np.linspace(low, high, points)


def _runs(table, metric: str):
    """(strategy, seed) -> the run's loops sorted by cost, rows without the cost or Dice left out."""
    column = x_column(metric)
    usable = table.dropna(subset=[column, MEAN_DICE])
    if usable.empty:
        return []
    most = usable.groupby(["strategy", "seed"]).size().max()
    return [
        (key, run.sort_values(column))
        for key, run in usable.groupby(["strategy", "seed"], sort=True)
        if len(run) == most
    ]


def interpolated(table, metric: str, column: str = MEAN_DICE):
    """One row per (strategy, seed, grid cost): the run's ``column`` interpolated at that cost."""
    import pandas as pd

    runs = _runs(table, metric)
    grid = common_grid(runs, metric)
    rows = []
    for (strategy, seed), run in runs:
        values = np.interp(grid, run[x_column(metric)].to_numpy(float), run[column].to_numpy(float))
        rows.extend(
            {"strategy": strategy, "seed": seed, "cost": float(c), column: float(v)}
            for c, v in zip(grid, values, strict=True)
        )
    return pd.DataFrame(rows, columns=["strategy", "seed", "cost", column])


def cost_curves(points, column: str = MEAN_DICE):
    """Per (strategy, grid cost): mean, std, seed count and the clipped 95% band of ``column``."""
    import pandas as pd

    rows = []
    for (strategy, cost), group in points.groupby(["strategy", "cost"], sort=True):
        values = group[column].dropna()
        std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        mean = float(values.mean()) if len(values) else math.nan
        half = ci_half_width(std, len(values))
        rows.append(
            {
                "strategy": strategy,
                "cost": cost,
                "seeds": len(values),
                f"{column}_mean": mean,
                f"{column}_std": std,
                f"{column}_ci95_low": float(np.clip(mean - half, 0.0, 1.0)),
                f"{column}_ci95_high": float(np.clip(mean + half, 0.0, 1.0)),
            }
        )
    return pd.DataFrame(rows)


def equal_cost_ranking(points, metric: str, column: str = MEAN_DICE):
    """Per strategy: AUBC over the common grid and the Dice at its end (mean, std over seeds), and
    the rank by mean AUBC (1 = best)."""
    import pandas as pd

    per_run = [
        {
            "strategy": strategy,
            "seed": seed,
            "aubc": aubc(run["cost"], run[column]),
            "final": float(run.sort_values("cost")[column].iloc[-1]),
        }
        for (strategy, seed), run in points.groupby(["strategy", "seed"], sort=True)
    ]
    runs = pd.DataFrame(per_run, columns=["strategy", "seed", "aubc", "final"])
    summary = runs.groupby("strategy").agg(
        runs=("seed", "count"),
        **{
            f"aubc_{metric}_mean": ("aubc", "mean"),
            f"aubc_{metric}_std": ("aubc", "std"),
            f"final_{metric}_mean": ("final", "mean"),
            f"final_{metric}_std": ("final", "std"),
        },
    )
    summary["rank"] = summary[f"aubc_{metric}_mean"].rank(ascending=False, method="min")
    if not points.empty:
        summary["grid_from"] = float(points["cost"].min())
        summary["grid_to"] = float(points["cost"].max())
    return summary.sort_values("rank").reset_index()


BUDGET_GAP_COLUMNS = ("planned", "estimated", "charged", "carry")


def budget_gaps(experiments: Sequence[ExperimentResults]):
    """One row per budgeted loop: experiment, strategy, seed, loop, the budget metric and the
    ``budget`` section of its costs (planned, estimated, charged, carry) with charged - estimated."""
    import pandas as pd

    rows = []
    for experiment in experiments:
        for loop in experiment.loops:
            budget = (loop.costs or {}).get("budget")
            if not isinstance(budget, dict):
                continue
            row = {
                "experiment": experiment.name,
                "strategy": str(experiment.config["strategy"]),
                "seed": experiment.config["seed"],
                "loop": loop.loop,
                "metric": budget.get("metric"),
                **{key: budget.get(key) for key in BUDGET_GAP_COLUMNS},
            }
            estimated, charged = row["estimated"], row["charged"]
            row["gap"] = None if estimated is None or charged is None else charged - estimated
            rows.append(row)
    return pd.DataFrame(
        rows, columns=["experiment", "strategy", "seed", "loop", "metric", *BUDGET_GAP_COLUMNS, "gap"]
    )
