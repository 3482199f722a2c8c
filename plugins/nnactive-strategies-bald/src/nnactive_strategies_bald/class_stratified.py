"""Class-stratified predictive entropy: ClaS PE, with power noise ClaP PE, with a β schedule ClaSP PE.

Each foreground label ``c`` gets its own pool scored by ``PE * p̄_c`` ("uncertainty where class c is
predicted"); the global pool is scored by plain PE. A share ``ratio`` of the query is split over the
class pools, the rest comes from the global pool, so rare classes get queried even when the most
uncertain regions lie elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import numpy as np

from nnactive_core.strategies.api import GLOBAL_POOL, CandidateTable, QueryContext, ScoreStrategy
from nnactive_strategies_bald.measures import class_weighted_entropy
from nnactive_strategies_bald.power import BetaSchedule, as_schedule, noised

if TYPE_CHECKING:
    import torch


def _ratio(instance, attribute, value) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must lie in [0, 1], got {value!r}")


def _optional_schedule(value: BetaSchedule | float | None) -> BetaSchedule | None:
    return None if value is None else as_schedule(value)


@attrs.frozen(kw_only=True)
class ClassStratifiedEntropy(ScoreStrategy):
    """``ratio`` of the query from the class pools; ``beta`` (a schedule, a number or None for no noise)
    power-noises every pool's aggregated scores.

    ``foreground_case_quota`` (off in every registered name): split a case's class share
    ``patches_per_case * ratio`` over the F class pools instead of the established F + 1 pools (which
    counts the global pool too and so keeps fewer class candidates per case than the share asks)."""

    accepts_numpy = True

    name: str
    description: str
    display_name: str = ""
    ratio: float = attrs.field(converter=float, validator=_ratio)
    beta: BetaSchedule | None = attrs.field(default=None, converter=_optional_schedule)
    foreground_case_quota: bool = False

    def pools(self, ctx: QueryContext) -> tuple[int, ...]:
        return (*ctx.foreground_values, GLOBAL_POOL)

    def voxel_scores(self, probs: np.ndarray | torch.Tensor, ctx: QueryContext) -> np.ndarray | torch.Tensor:
        if probs.ndim != 5 or probs.shape[1] != len(ctx.label_values):
            raise ValueError(
                f"strategy {self.name}: probabilities of shape {tuple(probs.shape)} do not have one channel "
                f"per label value {ctx.label_values} (members x classes x Z x Y x X)"
            )
        # channels follow ctx.label_values, which need not be 0..C-1
        channels = [ctx.label_values.index(value) for value in ctx.foreground_values]
        return class_weighted_entropy(probs, channels)

    def perturb(self, patch_scores: np.ndarray, ctx: QueryContext, rng: np.random.Generator) -> np.ndarray:
        if self.beta is None:
            return patch_scores
        return noised(patch_scores, self.beta, ctx, rng)

    def pool_order(self, pools: Sequence[int], rng: np.random.Generator) -> list[int]:
        # earlier pools win overlaps, so a fixed order would always favour the same class
        return [pools[i] for i in rng.permutation(len(pools))]

    def case_quotas(self, ctx: QueryContext) -> dict[int, int]:
        """The established per-case rule: the global pool keeps
        ``floor(n * (1 - ratio))``, each class pool ``floor(n * (ratio / (F + 1)))``, at least 1 each,
        with n = ``patches_per_case`` and the products in float64 as there (``150 * (1 - 0.66)`` is
        50.99999999999999, so 50)."""
        per_case = ctx.patches_per_case
        foreground = ctx.foreground_values
        if not foreground:
            return {GLOBAL_POOL: per_case}
        pools = len(foreground) if self.foreground_case_quota else len(foreground) + 1
        class_quota = max(1, math.floor(per_case * (self.ratio / pools)))
        quotas = {value: class_quota for value in foreground}
        quotas[GLOBAL_POOL] = max(1, math.floor(per_case * (1.0 - self.ratio)))
        return quotas

    def compose(self, candidates: CandidateTable, ctx: QueryContext, rng: np.random.Generator) -> np.ndarray:
        from nnactive_core.strategies.compose import stratified_quotas, top_k_per_pool

        quotas = stratified_quotas(ctx.query_size, self.ratio, list(ctx.foreground_values), rng)
        return top_k_per_pool(candidates, quotas)
