"""Learning curves: per strategy and budget, the mean over seeds with its spread.

The band drawn around a curve is the 95% confidence interval of the mean over seeds, from Student's t
distribution: ``mean ± t_{0.975, n-1} · std / sqrt(n)`` with the sample std (ddof=1). With a single
seed there is no band. The standard deviation is reported beside it in the tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nnactive_core.analysis.collect import BUDGET

CONFIDENCE = 0.95
BAND_LABEL = "band: 95% CI of the mean over seeds (t)"


def ci_half_width(std: float, count: int, confidence: float = CONFIDENCE) -> float:
    """Half width of the t confidence interval of a mean; NaN for fewer than two values."""
    from scipy.stats import t

    if count < 2 or math.isnan(std):
        return math.nan
    return float(t.ppf(0.5 + confidence / 2, count - 1) * std / math.sqrt(count))


def curve_table(table, columns: Sequence[str], positions: Sequence[str] = ()):
    """Per (strategy, budget): for each column ``<column>_mean``, ``_std``, ``_count``, ``_ci95``, and
    for each of ``positions`` its mean ``<position>_mean`` (another x axis, such as the share of
    foreground voxels, whose value differs between the seeds at one budget)."""
    import pandas as pd

    rows = []
    for (strategy, budget), group in table.groupby(["strategy", BUDGET], sort=True):
        row = {"strategy": strategy, BUDGET: budget, "seeds": group["seed"].nunique()}
        for position in positions:
            row[f"{position}_mean"] = float(group[position].mean())
        for column in columns:
            values = group[column].dropna()
            std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            row[f"{column}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{column}_std"] = std
            row[f"{column}_count"] = len(values)
            row[f"{column}_ci95"] = ci_half_width(std, len(values))
        rows.append(row)
    return pd.DataFrame(rows)
