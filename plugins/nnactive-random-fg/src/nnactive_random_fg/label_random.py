"""``random-label`` and ``random-label2``: random patches of which a set share is centred on foreground.

Per patch an *area mode* is drawn: ``all`` (uniform position), ``seg`` (centred on a uniform voxel of a
foreground label present in the case, the label drawn uniformly among those) or ``border`` (the same on
the label's inner border). Cases are visited round-robin from a seeded shuffled list.

Where the established code loops forever or raises, this one degrades deterministically and says so in
the log: a foreground mode skips cases without foreground (or whose labels have no room left) and goes
to the next case; when no case in the rotation can host a foreground-centred patch any more, the patch
falls back to ``all``. A case where uniform draws find no room is dropped from the rotation; with no case
left the query fails naming how many patches were placed.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

import attrs
import numpy as np

from nnactive_core.strategies.api import PlacementStrategy
from nnactive_core.strategies.placement import (
    STARTING_TRIALS_PER_CASE,
    TRIALS_PER_CASE,
    CaseRotation,
    PlacementSession,
    centred_starts,
    trials_for,
    uniform_starts,
)
from nnactive_random_fg.labels import LabelStore
from nnactive_random_fg.record import ALL, AREA_MODES, SEG, Draw

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset
    from nnactive_core.patches.patch import Patch
    from nnactive_core.strategies.api import QueryContext

logger = logging.getLogger(__name__)


def _weights(value) -> tuple[float, float, float]:
    weights = tuple(float(w) for w in value)
    if len(weights) != len(AREA_MODES) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"mode_weights must be 3 non-negative weights for {AREA_MODES}, got {value!r}")
    total = sum(weights)
    return tuple(w / total for w in weights)  # type: ignore[return-value]


@attrs.frozen(kw_only=True)
class RandomLabel(PlacementStrategy):
    """Foreground-aware random placement. ``mode_weights`` are the probabilities of (all, seg, border)."""

    name: str
    description: str
    mode_weights: tuple[float, float, float] = attrs.field(converter=_weights)
    trials_per_case: int = TRIALS_PER_CASE
    starting_trials_per_case: int = STARTING_TRIALS_PER_CASE

    def place(self, oracle: Dataset, ctx: QueryContext) -> list[Patch]:
        session = PlacementSession(oracle, ctx)
        return [draw.patch for draw in self.draw(session, ctx.query_size, stream=(self.name,))]

    def draw(self, session: PlacementSession, count: int, stream: tuple[str, ...]) -> list[Draw]:
        """Add ``count`` patches to ``session`` (which may hold patches of an earlier phase) and say, per
        patch, which mode and label it was drawn for. ``stream`` names the random streams."""
        return _LabelDrawing(self, session, stream).run(count)


class _LabelDrawing:
    """One run of :class:`RandomLabel` on a session: rotation, generators and what was learnt about
    cases (no foreground, no room) along the way."""

    def __init__(self, strategy: RandomLabel, session: PlacementSession, stream: tuple[str, ...]) -> None:
        ctx = session.ctx
        self.who = stream[0]
        self.session = session
        self.store = LabelStore.of(session)
        self.weights = strategy.mode_weights
        self.trials = trials_for(ctx, strategy.trials_per_case, strategy.starting_trials_per_case)
        self.rotation = CaseRotation(session.cases, ctx.rng(*stream, "cases"))
        self.rng_modes = ctx.rng(*stream, "modes")
        self.rng_positions = ctx.rng(*stream, "positions")
        self.foreground = ctx.foreground_values
        self.full: set[tuple[str, int]] = set()
        """(case, label) pairs where centred draws found no room."""
        self.fg_exhausted: set[str] = set()
        """Cases without foreground, or where every foreground label found no room."""
        self.events: Counter[str] = Counter()
        """Skips, give-ups and fallbacks, logged once at the end."""

    def run(self, count: int) -> list[Draw]:
        draws = []
        while len(draws) < count:
            mode = AREA_MODES[self.rng_modes.choice(len(AREA_MODES), p=self.weights)]
            draw = self._visit(mode)
            if draw is None and mode != ALL:
                self.events["fallback to all"] += 1
                draw = self._visit(ALL)
            if draw is None:
                raise self.session.shortfall(
                    self.who, f"no case has room left after {self.trials} draws per case"
                )
            draws.append(draw)
        if self.events:
            modes = Counter(draw.mode for draw in draws)
            logger.info("%s: placed %s; %s", self.who, dict(modes), dict(self.events))
        return draws

    def _visit(self, mode: str) -> Draw | None:
        """One pass over the rotation, from where it stands, until a case takes a patch of ``mode``."""
        if mode != ALL and all(case in self.fg_exhausted for case in self.rotation):
            return None
        for _ in range(len(self.rotation)):
            if not len(self.rotation):
                return None
            case = self.rotation.take()
            if mode == ALL:
                draw = self._uniform(case)
                if draw is None:
                    self.rotation.drop(case)
                    self.events["cases dropped (no room)"] += 1
            else:
                draw = self._centred(case, mode)
            if draw is not None:
                return draw
        return None

    def _uniform(self, case: str) -> Draw | None:
        occupancy = self.session.occupancy(case)
        patch = self.session.search(
            case,
            lambda n: uniform_starts(occupancy.shape, occupancy.size, self.rng_positions, n),
            self.trials,
        )
        return None if patch is None else Draw(patch=patch, case=case, mode=ALL)

    def _centred(self, case: str, mode: str) -> Draw | None:
        if case in self.fg_exhausted:
            self.events[f"{mode} draws skipped a case"] += 1
            return None
        labels = self.store.get(case)
        open_labels = [v for v in labels.present(self.foreground) if (case, v) not in self.full]
        if not open_labels:
            self.fg_exhausted.add(case)
            self.events[f"{mode} draws skipped a case"] += 1
            return None
        label = int(open_labels[self.rng_positions.integers(len(open_labels))])
        occupancy = self.session.occupancy(case)
        draw_voxels = labels.draw_voxels if mode == SEG else labels.draw_border_voxels

        def propose(n: int) -> np.ndarray:
            return centred_starts(draw_voxels(label, self.rng_positions, n), occupancy.shape, occupancy.size)

        patch = self.session.search(case, propose, self.trials)
        if patch is None:
            self.full.add((case, label))
            self.events[f"{mode} draws found no room"] += 1
            return None
        return Draw(patch=patch, case=case, mode=mode, label=label)
