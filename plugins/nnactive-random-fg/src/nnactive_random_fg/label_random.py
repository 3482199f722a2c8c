"""``random-label`` and ``random-label2``: random patches of which a set share is centred on foreground.

Cases are visited round-robin from a seeded shuffled list. On every visit an *area mode* is drawn anew,
as the established code does: ``all`` (uniform position), ``seg`` (centred on a
uniform voxel of a foreground label present in the case, the label drawn uniformly among those) or
``border`` (the same on the label's inner border). A visit that cannot place its mode (no foreground,
no room) places nothing and the next case is visited with a new mode, so the share of foreground-centred
patches is that of the modes *that succeed*, not exactly the nominal 2/3 or 1/3 once cases fill up.
``mode_per_patch`` (off in every registered name) draws the mode once per patch instead and keeps it
until a case takes it, which realises the nominal share.

Where the established code loops forever or raises, this one degrades deterministically and says so in
the log: cases without foreground, or whose drawn label has no room left, waste the visit as any failed
visit does; what failed once in a case (uniform draws, or draws centred on a label) is not retried there
in the same query; visits of modes that no case can take any more are skipped in one geometric draw;
when no case can take any mode the query fails naming how many patches were placed.
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
from nnactive_random_fg.record import ALL, AREA_MODES, FOREGROUND_MODES, SEG, Draw

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
    """Foreground-aware random placement. ``mode_weights`` are the probabilities of (all, seg, border).

    Options that are off in every registered name (each changes what is selected): ``mode_per_patch``
    draws the mode once per patch instead of once per case visit; ``include_last_start`` lets ``all``
    propose the last valid start ``D - p``, which the established code never draws."""

    name: str
    description: str
    display_name: str = ""
    mode_weights: tuple[float, float, float] = attrs.field(converter=_weights)
    trials_per_case: int = TRIALS_PER_CASE
    starting_trials_per_case: int = STARTING_TRIALS_PER_CASE
    mode_per_patch: bool = False
    include_last_start: bool = False

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
        self.per_patch = strategy.mode_per_patch
        self.last_start = strategy.include_last_start
        self.trials = trials_for(ctx, strategy.trials_per_case, strategy.starting_trials_per_case)
        self.rotation = CaseRotation(session.cases, ctx.rng(*stream, "cases"))
        self.rng_modes = ctx.rng(*stream, "modes")
        self.rng_positions = ctx.rng(*stream, "positions")
        self.foreground = ctx.foreground_values
        self.uniform_full: set[str] = set()
        """Cases where uniform draws found no room."""
        self.full: set[tuple[str, int]] = set()
        """(case, label) pairs where centred draws found no room."""
        self.fg_exhausted: set[str] = set()
        """Cases without foreground, or where every foreground label found no room."""
        self.events: Counter[str] = Counter()
        """Wasted visits, skips and fallbacks, logged once at the end."""

    def run(self, count: int) -> list[Draw]:
        draws = [self._next_patch() for _ in range(count)]
        if self.events:
            modes = Counter(draw.mode for draw in draws)
            logger.info("%s: placed %s; %s", self.who, dict(modes), dict(self.events))
        return draws

    def _next_patch(self) -> Draw:
        """Visit cases until one takes a patch."""
        kept = self._draw_mode(self.weights) if self.per_patch else None
        while True:
            live = self._live_modes()
            if kept is not None and kept not in live:
                kept = self._fallback(live)
            mode = kept if kept is not None else self._visit_mode(live)
            draw = self._visit(self.rotation.take(), mode)
            if draw is not None:
                return draw

    def _draw_mode(self, probabilities) -> str:
        return AREA_MODES[self.rng_modes.choice(len(AREA_MODES), p=probabilities)]

    def _live_modes(self) -> frozenset[str]:
        """The modes that some case of the rotation may still take."""
        live = set()
        if len(self.uniform_full) < len(self.rotation):
            live.add(ALL)
        if self.foreground and len(self.fg_exhausted) < len(self.rotation):
            live.update(FOREGROUND_MODES)
        return frozenset(live)

    def _fallback(self, live: frozenset[str]) -> str:
        """``all`` when no drawable mode can succeed any more, or the query fails."""
        if ALL not in live:
            raise self.session.shortfall(
                self.who, f"no case has room left after {self.trials} draws per case"
            )
        self.events["fallback to all"] += 1
        return ALL

    def _visit_mode(self, live: frozenset[str]) -> str:
        """The mode of the next visit. Visits that would draw a mode no case can take are skipped in one
        geometric draw of their number, which keeps the established per-visit distribution (those
        visits only move the rotation on) without looping through them."""
        if not any(w > 0 and mode not in live for mode, w in zip(AREA_MODES, self.weights, strict=True)):
            return self._draw_mode(self.weights)
        p_live = sum(w for mode, w in zip(AREA_MODES, self.weights, strict=True) if mode in live)
        if p_live <= 0:
            return self._fallback(live)
        wasted = int(self.rng_modes.geometric(p_live)) - 1
        if wasted:
            self.events["visits of modes no case can take"] += wasted
            for _ in range(wasted % len(self.rotation)):
                self.rotation.take()
        conditional = [
            w / p_live if mode in live else 0.0 for mode, w in zip(AREA_MODES, self.weights, strict=True)
        ]
        return self._draw_mode(conditional)

    def _visit(self, case: str, mode: str) -> Draw | None:
        if mode != ALL:
            return self._centred(case, mode)
        if case in self.uniform_full:
            self.events["all visits to a full case"] += 1
            return None
        draw = self._uniform(case)
        if draw is None:
            self.uniform_full.add(case)
            self.events["cases without room for uniform draws"] += 1
        return draw

    def _uniform(self, case: str) -> Draw | None:
        occupancy = self.session.occupancy(case)
        patch = self.session.search(
            case,
            lambda n: uniform_starts(
                occupancy.shape, occupancy.size, self.rng_positions, n, last_start=self.last_start
            ),
            self.trials,
        )
        return None if patch is None else Draw(patch=patch, case=case, mode=ALL)

    def _centred(self, case: str, mode: str) -> Draw | None:
        if case in self.fg_exhausted:
            self.events[f"{mode} visits to a case without open foreground"] += 1
            return None
        labels = self.store.get(case)
        present = labels.present(self.foreground)
        if not present:
            self.fg_exhausted.add(case)
            self.events[f"{mode} visits to a case without open foreground"] += 1
            return None
        # drawn among all labels present, as established; one found full before wastes the visit
        label = int(present[self.rng_positions.integers(len(present))])
        if (case, label) in self.full:
            self.events[f"{mode} visits to a full label"] += 1
            return None
        occupancy = self.session.occupancy(case)
        draw_voxels = labels.draw_voxels if mode == SEG else labels.draw_border_voxels

        def propose(n: int) -> np.ndarray:
            return centred_starts(draw_voxels(label, self.rng_positions, n), occupancy.shape, occupancy.size)

        patch = self.session.search(case, propose, self.trials)
        if patch is None:
            self.full.add((case, label))
            if all((case, value) in self.full for value in present):
                self.fg_exhausted.add(case)
            self.events[f"{mode} draws found no room"] += 1
            return None
        return Draw(patch=patch, case=case, mode=mode, label=label)
