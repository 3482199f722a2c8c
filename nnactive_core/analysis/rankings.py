"""Rankings of strategies: leave-one-seed-out stability within a setting, and Friedman + Nemenyi
across settings.

- Leave-one-seed-out: for each seed, the strategies are ranked by the mean of a score (AUBC or final
  Dice) over the *other* seeds (1 = best, ties share the smallest rank). Stability is Kendall's tau
  between the rankings of every pair of left-out seeds (1: the ranking never changes).
- Friedman: strategies are ranked within each setting (average ranks for ties, as the test assumes) and
  the Friedman chi-square test asks whether the mean ranks differ. Nemenyi's post-hoc test then
  compares every pair: two strategies differ when their mean ranks differ by more than the critical
  difference ``CD = q_alpha / sqrt(2) * sqrt(k (k + 1) / (6 N))`` (Demsar 2006), with ``q_alpha`` from
  the studentized range distribution with k groups and infinite degrees of freedom; the pairwise
  p-value is that distribution's survival function at ``sqrt(2) * |R_i - R_j| / sqrt(k (k + 1) / (6 N))``.
  Only strategies present in every setting take part; the test needs at least 3 of them and 2 settings.
"""

from __future__ import annotations

import itertools
import math

import attrs

MIN_FRIEDMAN_STRATEGIES = 3
MIN_FRIEDMAN_SETTINGS = 2


def rank_descending(scores, method: str = "min"):
    """Ranks of a Series of scores, 1 for the highest."""
    return scores.rank(ascending=False, method=method)


@attrs.frozen(kw_only=True)
class SeedStability:
    ranks: object
    """DataFrame: one row per left-out seed, one column per strategy."""
    mean_tau: float
    mean_p: float
    pairs: int
    note: str = ""


def leave_one_seed_out(runs, column: str) -> SeedStability:
    """Stability of the ranking by ``column`` of a run table (strategy, seed, ``column``)."""
    import pandas as pd
    from scipy.stats import kendalltau

    runs = runs.dropna(subset=[column])
    seeds = sorted(runs["seed"].unique())
    strategies = sorted(runs["strategy"].unique())
    if len(seeds) < 2 or len(strategies) < 2:
        return SeedStability(
            ranks=pd.DataFrame(),
            mean_tau=math.nan,
            mean_p=math.nan,
            pairs=0,
            note="needs at least 2 seeds and 2 strategies",
        )
    rows = {}
    for seed in seeds:
        means = runs[runs["seed"] != seed].groupby("strategy")[column].mean()
        rows[seed] = rank_descending(means.reindex(strategies))
    ranks = pd.DataFrame(rows).T
    ranks.index.name = "left_out_seed"
    complete = ranks.dropna(axis=1)
    note = ""
    if complete.shape[1] < ranks.shape[1]:
        dropped = sorted(set(ranks.columns) - set(complete.columns))
        note = f"left out of tau (present in too few seeds): {', '.join(dropped)}"
    taus, ps = [], []
    for first, second in itertools.combinations(complete.index, 2):
        tau, p = kendalltau(complete.loc[first], complete.loc[second])
        if not math.isnan(tau):
            taus.append(tau)
            ps.append(p)
    if not taus:
        note = note or "every ranking is constant: tau undefined"
    return SeedStability(
        ranks=ranks,
        mean_tau=float(sum(taus) / len(taus)) if taus else math.nan,
        mean_p=float(sum(ps) / len(ps)) if ps else math.nan,
        pairs=len(taus),
        note=note,
    )


@attrs.frozen(kw_only=True)
class FriedmanResult:
    ranks: object
    """DataFrame: ranks per setting (rows) and strategy (columns)."""
    mean_ranks: object
    """Series: mean rank per strategy, best first."""
    statistic: float
    p_value: float
    critical_difference: float
    nemenyi_p: object
    """DataFrame: pairwise Nemenyi p-values."""
    alpha: float
    note: str = ""


def nemenyi_critical_difference(strategies: int, settings: int, alpha: float = 0.05) -> float:
    from scipy.stats import studentized_range

    q_alpha = studentized_range.ppf(1 - alpha, strategies, math.inf) / math.sqrt(2)
    return float(q_alpha * math.sqrt(strategies * (strategies + 1) / (6 * settings)))


def nemenyi_p_values(mean_ranks, settings: int):
    """Pairwise Nemenyi p-values from mean ranks over ``settings`` blocks."""
    import pandas as pd
    from scipy.stats import studentized_range

    names = list(mean_ranks.index)
    k = len(names)
    scale = math.sqrt(k * (k + 1) / (6 * settings))
    frame = pd.DataFrame(1.0, index=names, columns=names)
    for first, second in itertools.combinations(names, 2):
        statistic = math.sqrt(2) * abs(mean_ranks[first] - mean_ranks[second]) / scale
        p = float(min(1.0, studentized_range.sf(statistic, k, math.inf)))
        frame.loc[first, second] = frame.loc[second, first] = p
    return frame


def friedman_nemenyi(scores, alpha: float = 0.05) -> FriedmanResult:
    """``scores``: DataFrame with one row per setting and one column per strategy (higher is better)."""
    import pandas as pd
    from scipy.stats import friedmanchisquare

    complete = scores.dropna(axis=1)
    note = ""
    if complete.shape[1] < scores.shape[1]:
        dropped = sorted(set(scores.columns) - set(complete.columns))
        note = f"without a score in every setting, left out: {', '.join(map(str, dropped))}. "
    k, n = complete.shape[1], complete.shape[0]
    if k < MIN_FRIEDMAN_STRATEGIES or n < MIN_FRIEDMAN_SETTINGS:
        return FriedmanResult(
            ranks=pd.DataFrame(),
            mean_ranks=pd.Series(dtype=float),
            statistic=math.nan,
            p_value=math.nan,
            critical_difference=math.nan,
            nemenyi_p=pd.DataFrame(),
            alpha=alpha,
            note=note + f"skipped: Friedman + Nemenyi need at least {MIN_FRIEDMAN_STRATEGIES} strategies "
            f"in at least {MIN_FRIEDMAN_SETTINGS} settings (have {k} strategies, {n} settings)",
        )
    ranks = complete.apply(lambda row: rank_descending(row, method="average"), axis=1)
    mean_ranks = ranks.mean().sort_values()
    statistic, p_value = friedmanchisquare(*[complete[column].to_numpy() for column in complete.columns])
    return FriedmanResult(
        ranks=ranks,
        mean_ranks=mean_ranks,
        statistic=float(statistic),
        p_value=float(p_value),
        critical_difference=nemenyi_critical_difference(k, n, alpha),
        nemenyi_p=nemenyi_p_values(mean_ranks, n),
        alpha=alpha,
        note=note.strip(),
    )
