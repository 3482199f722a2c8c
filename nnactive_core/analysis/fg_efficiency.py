"""Foreground efficiency (FG-Eff): how fast a strategy approaches full-data Dice per annotated
foreground voxel.

Model, fitted per strategy on all (seed, loop) points of a setting::

    y(x) = c - a * exp(-gamma * (x - x0))

- ``x``: the annotated share of the pool's foreground voxels as a fraction in [0, 1]
  (``pct_foreground_voxels / 100``), so gamma is "per pool foreground".
- ``y``: mean foreground Dice on the held-out validation set.
- ``c``: the full-data reference Dice when given (``--reference``), else the largest mean Dice observed
  in the setting, over all strategies and loops.
- ``x0``, ``a``: shared by all strategies of the setting and anchored on the starting budget: ``x0`` is
  the mean x and ``c - a`` the mean y of the rows at the setting's smallest budget. (The established code
  anchors at the single smallest x, which in practice is one run's point; the mean over all starting-
  budget runs is less noisy and still identical for every strategy, so gamma alone tells them apart.)
- ``gamma`` is fitted by nonlinear least squares (scipy ``curve_fit``); ``gamma_std`` is its standard
  deviation ``sqrt(pcov)`` (not the variance), and ``r2`` the fit's coefficient of determination.
  Higher gamma is better. A fit with ``r2`` below :data:`POOR_R2` is flagged (``poor_fit``, and a
  note): its gamma says little about the strategy, so the analysis warns about it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
import numpy as np

from nnactive_core.analysis.collect import BUDGET, FG_PERCENT, MEAN_DICE

_START_GRID = np.logspace(-2, 4, 61)
POOR_R2 = 0.5
"""Below this R² the exponential model explains less than half the spread of the points."""


@attrs.frozen(kw_only=True)
class Anchor:
    c: float
    a: float
    x0: float


@attrs.frozen(kw_only=True)
class GammaFit:
    gamma: float
    gamma_std: float
    r2: float
    points: int
    note: str = ""


def model(x, gamma: float, anchor: Anchor):
    return anchor.c - anchor.a * np.exp(-gamma * (np.asarray(x, dtype=float) - anchor.x0))


def r_squared(y: np.ndarray, predicted: np.ndarray) -> float:
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0:
        return math.nan
    return 1.0 - float(np.sum((y - predicted) ** 2)) / total


def fit_gamma(x: Sequence[float], y: Sequence[float], anchor: Anchor) -> GammaFit:
    """Least-squares gamma for fixed ``anchor``; NaN with a note when there is nothing to fit."""
    from scipy.optimize import curve_fit

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 2 or np.ptp(x) == 0:
        return GammaFit(
            gamma=math.nan,
            gamma_std=math.nan,
            r2=math.nan,
            points=int(x.size),
            note="needs points at two or more foreground shares",
        )
    if not anchor.a > 0:
        return GammaFit(
            gamma=math.nan,
            gamma_std=math.nan,
            r2=math.nan,
            points=int(x.size),
            note=f"the starting budget already reaches c = {anchor.c:.4f}",
        )
    # a coarse grid picks the starting point, so a large gamma (fast saturation) is not missed
    with np.errstate(over="ignore", invalid="ignore"):
        errors = [np.sum((model(x, g, anchor) - y) ** 2) for g in _START_GRID]
    start = float(_START_GRID[int(np.nanargmin(errors))])
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            params, covariance = curve_fit(lambda xs, g: model(xs, g, anchor), x, y, p0=[start], maxfev=10000)
    except (RuntimeError, ValueError) as error:
        return GammaFit(
            gamma=math.nan, gamma_std=math.nan, r2=math.nan, points=int(x.size), note=f"fit failed: {error}"
        )
    gamma = float(params[0])
    variance = float(covariance[0, 0])
    return GammaFit(
        gamma=gamma,
        gamma_std=math.sqrt(variance) if variance >= 0 else math.nan,
        r2=r_squared(y, model(x, gamma, anchor)),
        points=int(x.size),
    )


def setting_anchor(table, c: float, x: str = FG_PERCENT, y: str = MEAN_DICE) -> Anchor:
    start = table[table[BUDGET] == table[BUDGET].min()]
    return Anchor(c=float(c), a=float(c - start[y].mean()), x0=float(start[x].mean() / 100.0))


def reference_or_max(table, reference: float | None, y: str = MEAN_DICE) -> tuple[float, str]:
    """``c`` and where it comes from."""
    if reference is not None:
        return float(reference), "full-data reference"
    return float(table[y].max()), "max observed Dice in the setting"


def efficiency_table(table, reference: float | None = None, x: str = FG_PERCENT, y: str = MEAN_DICE):
    """Per strategy: gamma, gamma_std, r2, points, poor_fit (R² below :data:`POOR_R2`), and the shared
    c, c_source, a, x0, and a note. Empty when the table has no foreground-share column (no
    costs.json)."""
    import pandas as pd

    columns = [
        "strategy",
        "gamma",
        "gamma_std",
        "r2",
        "points",
        "poor_fit",
        "c",
        "c_source",
        "a",
        "x0",
        "note",
    ]
    if x not in table.columns or table[x].isna().all():
        return pd.DataFrame(columns=columns)
    table = table.dropna(subset=[x, y])
    c, source = reference_or_max(table, reference, y)
    anchor = setting_anchor(table, c, x, y)
    rows = []
    for strategy, group in table.groupby("strategy", sort=True):
        fit = fit_gamma(group[x] / 100.0, group[y], anchor)
        poor = math.isfinite(fit.r2) and fit.r2 < POOR_R2
        if poor:
            fit = attrs.evolve(fit, note=f"poor fit: R² = {fit.r2:.2f} < {POOR_R2}")
        rows.append(
            {
                "strategy": strategy,
                **attrs.asdict(fit),
                "poor_fit": poor,
                "c": anchor.c,
                "c_source": source,
                "a": anchor.a,
                "x0": anchor.x0,
            }
        )
    return pd.DataFrame(rows, columns=columns)
