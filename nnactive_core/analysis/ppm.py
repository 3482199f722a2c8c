"""Pairwise penalty matrix (PPM, after BADGE, Ash et al.): how often one strategy is significantly
worse than another across the budgets of a setting.

Orientation: ``matrix[i, j]`` (row i, column j) is the fraction of the setting's budgets at which
strategy i is significantly *worse* than strategy j. Row i therefore lists i's losses and column j
j's wins. In tables and heatmaps the extra row ``mean`` is the column mean over the other strategies
(how often the column strategy beats another: higher is better) and the extra column ``mean`` the row
mean (how often the row strategy loses: lower is better). The diagonal is empty.

The test: at each budget, for each pair, the values of the two strategies are paired *by seed* (only
seeds both have there; at least two), and a two-sided one-sample t-test is run on the differences. A
pair whose differences are all equal is significant exactly when that difference is not zero. With
``holm`` the p-values of all pairs and budgets of the setting are corrected together by Holm's
step-down method. A significant result adds ``1 / number of budgets`` to the loser's cell.

Merging matrices of several settings sums them; ``settings`` counts how many were merged, so
``matrix / settings`` is the fraction over all settings' budgets.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs
import numpy as np

from nnactive_core.analysis.collect import BUDGET, MEAN_DICE
from nnactive_core.io import atomic_write_json, read_json

ORIENTATION = "matrix[i][j] = fraction of budgets where methods[i] is significantly worse than methods[j]"


def paired_p_value(differences: Sequence[float]) -> float:
    """Two-sided p-value of a one-sample t-test of ``differences`` against 0."""
    from scipy.stats import t

    z = np.asarray(differences, dtype=float)
    mean = float(z.mean())
    spread = float(z.std(ddof=1))
    if spread <= 1e-12 * max(1.0, abs(mean)):
        return 1.0 if mean == 0 else 0.0
    statistic = mean / (spread / math.sqrt(z.size))
    return float(2 * t.sf(abs(statistic), z.size - 1))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


@attrs.frozen(kw_only=True, eq=False)
class PairwisePenaltyMatrix:
    methods: tuple[str, ...] = attrs.field(converter=tuple)
    matrix: np.ndarray = attrs.field(converter=lambda m: np.asarray(m, dtype=float))
    alpha: float = 0.05
    holm: bool = False
    settings: int = 1

    def __attrs_post_init__(self) -> None:
        n = len(self.methods)
        if self.matrix.shape != (n, n):
            raise ValueError(f"PPM: matrix of shape {self.matrix.shape} for {n} methods")

    def entry(self, worse: str, better: str) -> float:
        """Fraction of budgets where ``worse`` is significantly worse than ``better``."""
        return float(self.matrix[self.methods.index(worse), self.methods.index(better)])

    def merge(self, *others: PairwisePenaltyMatrix) -> PairwisePenaltyMatrix:
        """Sum of this and ``others`` over the union of their methods."""
        everything = (self, *others)
        if len({(m.alpha, m.holm) for m in everything}) > 1:
            raise ValueError("PPM: cannot merge matrices computed with different alpha or Holm settings")
        methods = sorted({name for m in everything for name in m.methods})
        total = np.zeros((len(methods), len(methods)))
        for other in everything:
            index = [methods.index(name) for name in other.methods]
            total[np.ix_(index, index)] += other.matrix
        return PairwisePenaltyMatrix(
            methods=methods,
            matrix=total,
            alpha=self.alpha,
            holm=self.holm,
            settings=sum(m.settings for m in everything),
        )

    def to_frame(self, normalise: bool = True, names: dict[str, str] | None = None):
        """The matrix (divided by ``settings`` when ``normalise``) with the ``mean`` row and column;
        the diagonal is NaN."""
        import pandas as pd

        n = len(self.methods)
        values = self.matrix / (self.settings if normalise else 1)
        values = np.where(np.eye(n, dtype=bool), np.nan, values)
        labels = [(names or {}).get(m, m) for m in self.methods]
        frame = pd.DataFrame(values, index=labels, columns=labels)
        divisor = max(n - 1, 1)
        frame["mean"] = np.nansum(values, axis=1) / divisor
        frame.loc["mean"] = list(np.nansum(values, axis=0) / divisor) + [np.nan]
        return frame

    def to_json(self) -> dict:
        return {
            "methods": list(self.methods),
            "matrix": self.matrix.tolist(),
            "alpha": self.alpha,
            "holm": self.holm,
            "settings": self.settings,
            "orientation": ORIENTATION,
        }

    @classmethod
    def from_json(cls, payload: dict, source: str = "ppm") -> PairwisePenaltyMatrix:
        try:
            return cls(
                methods=payload["methods"],
                matrix=payload["matrix"],
                alpha=float(payload["alpha"]),
                holm=bool(payload["holm"]),
                settings=int(payload["settings"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{source}: not a pairwise penalty matrix: {error}") from None

    def save(self, path: Path) -> None:
        atomic_write_json(Path(path), self.to_json())

    @classmethod
    def load(cls, path: Path) -> PairwisePenaltyMatrix:
        return cls.from_json(read_json(Path(path)), source=str(path))

    @classmethod
    def compute(
        cls,
        table,
        value: str = MEAN_DICE,
        alpha: float = 0.05,
        holm: bool = False,
        methods: Iterable[str] | None = None,
    ) -> PairwisePenaltyMatrix:
        """The PPM of one setting from its results table (columns strategy, seed, budget, ``value``)."""
        methods = tuple(sorted(methods if methods is not None else table["strategy"].unique()))
        budgets = sorted(table[BUDGET].unique())
        duplicated = table.duplicated(["strategy", "seed", BUDGET])
        if duplicated.any():
            row = table[duplicated].iloc[0]
            raise ValueError(
                f"PPM: strategy {row['strategy']} seed {row['seed']} has budget {row[BUDGET]} twice"
            )
        values = table.dropna(subset=[value]).set_index(["strategy", BUDGET, "seed"])[value].sort_index()
        tests = []
        for budget in budgets:
            for first, second in itertools.combinations(methods, 2):
                try:
                    a, b = values.loc[(first, budget)], values.loc[(second, budget)]
                except KeyError:
                    continue
                seeds = sorted(set(a.index) & set(b.index))
                if len(seeds) < 2:
                    continue
                differences = a.loc[seeds].to_numpy() - b.loc[seeds].to_numpy()
                tests.append((first, second, float(differences.mean()), paired_p_value(differences)))
        p_values = [test[3] for test in tests]
        if holm and tests:
            p_values = holm_adjust(p_values)
        matrix = np.zeros((len(methods), len(methods)))
        for (first, second, mean, _), p in zip(tests, p_values, strict=True):
            if p < alpha and mean != 0:
                worse, better = (first, second) if mean < 0 else (second, first)
                matrix[methods.index(worse), methods.index(better)] += 1 / len(budgets)
        return cls(methods=methods, matrix=matrix, alpha=alpha, holm=holm, settings=1)
