"""KMeansBALD: uncertain candidates, diverse query.

Each case offers its best non-overlapping BALD patches; the query is the set of candidates that covers
the candidates' encoder-feature space best, chosen by deterministic greedy k-center ("k-means++ max
select"). Uncertainty only decides who becomes a candidate, not who is picked.
"""

from __future__ import annotations

import attrs
import numpy as np

from nnactive_core.strategies.api import CandidateTable, QueryContext
from nnactive_strategies_bald.uncertainty import UncertaintyStrategy

CANDIDATES_PER_PATCH = 2
STD_EPSILON = 1e-6


def standardise(features: np.ndarray) -> np.ndarray:
    """Divide each dimension by its standard deviation (+1e-6), without centring: the first centre is
    the candidate farthest from the origin. Non-finite entries (feature cells no tile reached) count
    as 0."""
    values = np.asarray(features, dtype=np.float64)
    values = np.where(np.isfinite(values), values, 0.0)
    return values / (values.std(axis=0) + STD_EPSILON)


def k_center_greedy(features: np.ndarray, k: int) -> np.ndarray:
    """Row indices of ``k`` centres (all rows if fewer): start at the largest norm, then repeatedly add
    the row farthest (squared L2) from its nearest centre. Deterministic; ties go to the lower row."""
    points = np.asarray(features, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"features must be candidates x dimensions, got shape {points.shape}")
    count = min(int(k), len(points))
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    chosen = [int(np.argmax(np.einsum("ij,ij->i", points, points)))]
    nearest = ((points - points[chosen[0]]) ** 2).sum(axis=1)
    nearest[chosen[0]] = -np.inf
    while len(chosen) < count:
        row = int(np.argmax(nearest))
        chosen.append(row)
        nearest = np.minimum(nearest, ((points - points[row]) ** 2).sum(axis=1))
        nearest[chosen] = -np.inf
    return np.asarray(chosen, dtype=np.int64)


@attrs.frozen(kw_only=True)
class KMeansStrategy(UncertaintyStrategy):
    """``measure`` picks ``2 * patches_per_case`` candidates per case; greedy k-center on their
    standardised encoder features composes the query."""

    requires_features = True

    def case_quotas(self, ctx: QueryContext) -> dict[int, int]:
        return {pool: CANDIDATES_PER_PATCH * ctx.patches_per_case for pool in self.pools(ctx)}

    def compose(self, candidates: CandidateTable, ctx: QueryContext, rng: np.random.Generator) -> np.ndarray:
        if candidates.features is None:
            raise ValueError(
                f"strategy {self.name} needs candidate features, but the query engine supplied none "
                "(was the ensemble predicted with feature capture?)"
            )
        features = np.asarray(candidates.features)
        if features.ndim != 2 or len(features) != len(candidates):
            raise ValueError(
                f"strategy {self.name}: candidate features of shape {features.shape} do not match "
                f"{len(candidates)} candidates"
            )
        return k_center_greedy(standardise(features), ctx.query_size)
