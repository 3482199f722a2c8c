"""``*-all-classes``: the class-covering phase (:mod:`nnactive_random_fg.class_cover`), then the base
random variant fills the query up, treating the covering patches as already chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from nnactive_core.strategies.api import PlacementStrategy
from nnactive_core.strategies.placement import STARTING_TRIALS_PER_CASE, PlacementSession
from nnactive_core.strategies.random_uniform import UniformRandom
from nnactive_random_fg.class_cover import check_budget, cover_labels
from nnactive_random_fg.label_random import RandomLabel
from nnactive_random_fg.record import ALL, Draw

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset
    from nnactive_core.patches.patch import Patch
    from nnactive_core.strategies.api import QueryContext


@attrs.frozen(kw_only=True)
class AllClasses(PlacementStrategy):
    """``per_label`` patches per label (background included), each in a different case, then ``base``
    fills up to ``query_size``. The covering phase draws up to ``cover_trials_per_case`` positions per
    case in every loop, as many as a starting budget: it must not fail lightly."""

    name: str
    description: str
    display_name: str = ""
    base: UniformRandom | RandomLabel
    per_label: int = 2
    cover_trials_per_case: int = STARTING_TRIALS_PER_CASE

    def place(self, oracle: Dataset, ctx: QueryContext) -> list[Patch]:
        return [draw.patch for draw in self.draw(oracle, ctx)]

    def draw(self, oracle: Dataset, ctx: QueryContext) -> list[Draw]:
        """Place the query and say, per patch, what it was drawn for (``cover`` for the first phase)."""
        labels = ctx.label_values
        check_budget(labels, self.per_label, ctx.query_size, self.name)
        session = PlacementSession(oracle, ctx)
        draws = cover_labels(
            session,
            labels,
            per_label=self.per_label,
            rng=ctx.rng(self.name, "cover"),
            trials=self.cover_trials_per_case,
            who=self.name,
        )
        stream = (self.name, "fill")
        count = ctx.query_size - len(draws)
        if isinstance(self.base, RandomLabel):
            draws += self.base.draw(session, count, stream)
        else:
            draws += [
                Draw(patch=patch, case=oracle.case_of_file(patch.file), mode=ALL)
                for patch in self.base.fill(session, count, stream)
            ]
        return draws
