"""The plain ``random`` baseline: every patch at a uniform position of a case, cases round-robin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from nnactive_core.strategies.api import PlacementStrategy
from nnactive_core.strategies.placement import (
    STARTING_TRIALS_PER_CASE,
    TRIALS_PER_CASE,
    PlacementSession,
    place_uniform,
    trials_for,
)

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset
    from nnactive_core.patches.patch import Patch
    from nnactive_core.strategies.api import QueryContext


@attrs.frozen(kw_only=True)
class UniformRandom(PlacementStrategy):
    """Patch ``i`` goes to the ``i``-th case of a seeded shuffled pool list (cyclically); its start is
    uniform per axis over ``0 .. D - p - 1`` as established, over ``0 .. D - p``
    with ``include_last_start``; where the case is smaller than the patch, the patch covers the axis. A
    case where ``trials_per_case`` draws find no room is dropped; when no case is left the query fails
    naming how many patches were placed."""

    name: str = "random"
    description: str = "Uniform random patch positions, pool cases visited round-robin."
    display_name: str = "Random"
    trials_per_case: int = TRIALS_PER_CASE
    starting_trials_per_case: int = STARTING_TRIALS_PER_CASE
    include_last_start: bool = False

    def place(self, oracle: Dataset, ctx: QueryContext) -> list[Patch]:
        session = PlacementSession(oracle, ctx)
        return self.fill(session, ctx.query_size, stream=(self.name,))

    def fill(self, session: PlacementSession, count: int, stream: tuple[str, ...]) -> list[Patch]:
        """Add ``count`` patches to ``session`` (which may already hold patches of an earlier phase).
        ``stream`` names the random streams, so a composite strategy draws independently."""
        ctx = session.ctx
        trials = trials_for(ctx, self.trials_per_case, self.starting_trials_per_case)
        return place_uniform(
            session,
            count,
            rng_cases=ctx.rng(*stream, "cases"),
            rng_positions=ctx.rng(*stream, "positions"),
            trials=trials,
            who=stream[0],
            last_start=self.include_last_start,
        )
