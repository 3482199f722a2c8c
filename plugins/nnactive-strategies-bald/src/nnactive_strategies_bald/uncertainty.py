"""Plain uncertainty strategies: one voxel map (PE, EE or BALD), the core's top-k composition."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import numpy as np

from nnactive_core.strategies.api import QueryContext, ScoreStrategy
from nnactive_strategies_bald.measures import MEASURES, measure

if TYPE_CHECKING:
    import torch


def _known_measure(instance, attribute, value) -> None:
    if value not in MEASURES:
        raise ValueError(f"{attribute.name} must be one of {', '.join(MEASURES)}, got {value!r}")


@attrs.frozen(kw_only=True)
class UncertaintyStrategy(ScoreStrategy):
    """Scores each voxel by ``measure`` (see :mod:`nnactive_strategies_bald.measures`); the engine
    keeps the best non-overlapping patches per case and the query takes the global top-k."""

    accepts_numpy = True

    name: str
    description: str
    display_name: str = ""
    measure: str = attrs.field(validator=_known_measure)

    def voxel_scores(self, probs: np.ndarray | torch.Tensor, ctx: QueryContext) -> np.ndarray | torch.Tensor:
        return measure(self.measure, probs)[None]
