"""Soft-rank sampling: candidates are drawn without replacement with probability proportional to
``1 / rank`` of their uncertainty, which keeps the ranking but not its scale."""

from __future__ import annotations

import attrs
import numpy as np

from nnactive_core.strategies.api import CandidateTable, QueryContext
from nnactive_strategies_bald.uncertainty import UncertaintyStrategy

CANDIDATES_PER_PATCH = 2
"""Each case offers twice as many candidates as it may contribute, so sampling has room."""


@attrs.frozen(kw_only=True)
class SoftRankStrategy(UncertaintyStrategy):
    def case_quotas(self, ctx: QueryContext) -> dict[int, int]:
        return {pool: CANDIDATES_PER_PATCH * ctx.patches_per_case for pool in self.pools(ctx)}

    def compose(self, candidates: CandidateTable, ctx: QueryContext, rng: np.random.Generator) -> np.ndarray:
        from nnactive_core.strategies.compose import soft_rank_scores

        soft = soft_rank_scores(np.asarray(candidates.score), rng)
        return np.argsort(-soft, kind="stable")[: ctx.query_size]
