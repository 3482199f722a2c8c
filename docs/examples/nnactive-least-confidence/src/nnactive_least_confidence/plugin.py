"""Registers ``least_confidence``: score = 1 - max_c p̄_c(x), the ensemble's doubt about its own
prediction at each voxel. The core aggregates, selects and composes; the plugin only scores."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nnactive_core import hookimpl
from nnactive_core.strategies.api import ScoreStrategy

if TYPE_CHECKING:  # torch is imported only when a query runs, so `nnactive --help` stays instant
    import torch


class LeastConfidence(ScoreStrategy):
    name = "least_confidence"
    description = "1 - max class probability of the ensemble mean (Lewis & Gale 1994)."

    def voxel_scores(self, probs: torch.Tensor, ctx) -> torch.Tensor:
        mean = probs.float().mean(dim=0)
        return (1.0 - mean.max(dim=0).values).unsqueeze(0)


@hookimpl
def nnactive_register_strategies(register):
    register(LeastConfidence())
