"""Area under the budget curve (AUBC) and the final value, per run and per strategy.

AUBC integrates a run's curve with the trapezoid rule over its *actual* budgets (cumulative patches),
with the budget axis normalised to [0, 1] over the run's budget range:

    AUBC = sum_k (b_{k+1} - b_k) / (b_last - b_first) * (y_k + y_{k+1}) / 2

so a constant curve c gives c, equally spaced budgets give the familiar ``trapz(y, dx=1/(n-1))``, and
unequally spaced budgets (a starting budget that differs from the query size) weigh each segment by its
real width. A run with a single loop has no area: NaN. A NaN value anywhere makes the AUBC NaN.

Per strategy the runs are aggregated over seeds (mean, sample std with ddof=1, count). Only complete
runs, those with as many loops as the longest run of the setting, enter the aggregate, so unfinished
runs never pull a strategy's AUBC towards its early, lower values; they are listed instead. (Counting
loops rather than comparing budgets keeps runs whose starting budget came out a few patches larger.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nnactive_core.analysis.collect import BUDGET


def aubc(budgets: Sequence[float], values: Sequence[float]) -> float:
    """Normalised trapezoid area of ``values`` over ``budgets`` (any order; sorted here, stably). A
    budget given twice (a budgeted loop that could afford nothing) is a vertical step: the earlier
    value closes the segment before it, the later one opens the segment after it."""
    budgets = np.asarray(budgets, dtype=float)
    values = np.asarray(values, dtype=float)
    if budgets.shape != values.shape:
        raise ValueError(f"{budgets.size} budgets but {values.size} values")
    if budgets.size < 2:
        return math.nan
    order = np.argsort(budgets, kind="stable")
    budgets, values = budgets[order], values[order]
    if budgets[-1] == budgets[0]:
        return math.nan
    x = (budgets - budgets[0]) / (budgets[-1] - budgets[0])
    return float(np.sum(np.diff(x) * (values[1:] + values[:-1]) / 2))


def final_value(budgets: Sequence[float], values: Sequence[float]) -> float:
    """The value at the largest budget (its last loop where loops repeat it); NaN for an empty run."""
    if len(budgets) == 0:
        return math.nan
    budgets = np.asarray(budgets, dtype=float)
    return float(np.asarray(values, dtype=float)[int(np.flatnonzero(budgets == budgets.max())[-1])])


def run_table(table, columns: Sequence[str]):
    """Per (strategy, seed): ``aubc_<column>`` and ``final_<column>`` for each column, the number of
    loops, the budget range and whether the run is complete (as many loops as the longest run)."""
    import pandas as pd

    most_loops = table.groupby(["strategy", "seed"]).size().max()
    rows = []
    for (strategy, seed), run in table.groupby(["strategy", "seed"], sort=True):
        experiments = sorted(set(run["experiment"]))
        if len(experiments) > 1:
            shared = ", ".join(experiments)
            raise ValueError(f"experiments {shared} share strategy {strategy} and seed {seed}")
        row = {
            "strategy": strategy,
            "seed": seed,
            "experiment": run["experiment"].iloc[0],
            "loops": len(run),
            "first_budget": run[BUDGET].min(),
            "last_budget": run[BUDGET].max(),
        }
        row["complete"] = bool(row["loops"] == most_loops)
        for column in columns:
            row[f"aubc_{column}"] = aubc(run[BUDGET], run[column])
            row[f"final_{column}"] = final_value(run[BUDGET].to_numpy(), run[column].to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)


def strategy_table(runs, columns: Sequence[str]):
    """Per strategy over its complete runs: ``<aubc|final>_<column>_<mean|std|count>``, plus
    ``runs_excluded`` (incomplete runs left out)."""
    import pandas as pd

    rows = []
    for strategy, group in runs.groupby("strategy", sort=True):
        complete = group[group["complete"]]
        row = {"strategy": strategy, "runs": len(complete), "runs_excluded": int((~group["complete"]).sum())}
        for kind in ("aubc", "final"):
            for column in columns:
                values = complete[f"{kind}_{column}"].dropna()
                row[f"{kind}_{column}_mean"] = values.mean() if len(values) else math.nan
                row[f"{kind}_{column}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
                row[f"{kind}_{column}_count"] = len(values)
        rows.append(row)
    return pd.DataFrame(rows)
