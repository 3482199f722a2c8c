"""Learning curves: per strategy and budget, the mean over seeds with its spread.

The band drawn around a curve is the 95% confidence interval of the mean over seeds, from Student's t
distribution: ``mean ± t_{0.975, n-1} · std / sqrt(n)`` with the sample std (ddof=1), clipped to the
range a Dice can take, [0, 1] (``_ci95_low``, ``_ci95_high``). With a single seed there is no band. The
standard deviation is reported beside it in the tables.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nnactive_core.analysis.collect import BUDGET

CONFIDENCE = 0.95
BAND_LABEL = "band: 95% CI of the mean over seeds (t), clipped to [0, 1]"
DICE_RANGE = (0.0, 1.0)


def ci_half_width(std: float, count: int, confidence: float = CONFIDENCE) -> float:
    """Half width of the t confidence interval of a mean; NaN for fewer than two values."""
    from scipy.stats import t

    if count < 2 or math.isnan(std):
        return math.nan
    return float(t.ppf(0.5 + confidence / 2, count - 1) * std / math.sqrt(count))


def curve_table(table, columns: Sequence[str], positions: Sequence[str] = ()):
    """Per (strategy, budget): for each column ``<column>_mean``, ``_std``, ``_count``, ``_ci95`` (the
    half width), the band's ends ``_ci95_low`` and ``_ci95_high`` inside :data:`DICE_RANGE`, and
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
            half = ci_half_width(std, len(values))
            row[f"{column}_ci95"] = half
            mean = row[f"{column}_mean"]
            # np.clip keeps NaN (no band), where min/max would turn it into a bound
            row[f"{column}_ci95_low"] = float(np.clip(mean - half, *DICE_RANGE))
            row[f"{column}_ci95_high"] = float(np.clip(mean + half, *DICE_RANGE))
        rows.append(row)
    return pd.DataFrame(rows)
