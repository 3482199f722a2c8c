"""Shared machinery of placement strategies: proposing patch positions, accepting them against what a
case already holds, and visiting pool cases round-robin.

A :class:`PlacementSession` lives for one ``place`` call. It keeps one :class:`CaseOccupancy` per
visited case (the boxes already annotated or chosen, and the case's cost-free layer, read once), so
several phases of one strategy (a class-covering prefix, then a fill) share what was placed.

Positions are proposed in batches of start corners (``n x 3`` arrays, z, y, x) and the first acceptable
one is taken: the same distribution as one-at-a-time trials, checked vectorised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nnactive_core.datasets.api import NOT_FREE
from nnactive_core.patches.boxes import overlap_limit
from nnactive_core.patches.patch import Patch

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset
    from nnactive_core.strategies.api import QueryContext

logger = logging.getLogger(__name__)

TRIALS_PER_CASE = 600
STARTING_TRIALS_PER_CASE = 6000
_FIRST_BATCH = 8
_MAX_BATCH = 512

Proposer = Callable[[int], "np.ndarray | None"]
"""``propose(n)`` -> up to ``n`` start corners (``k x 3``, k >= 1) for one case, or None when the case
cannot propose anything for this draw."""


class PlacementError(RuntimeError):
    """A placement strategy cannot place what was asked (no room left, a label too rare)."""


def case_patch_size(shape: Sequence[int], patch_size: Sequence[int]) -> tuple[int, int, int]:
    """The patch size on a case: clipped to the case on axes where the case is smaller."""
    return tuple(min(int(p), int(d)) for p, d in zip(patch_size, shape, strict=True))  # type: ignore[return-value]


def uniform_starts(
    shape: Sequence[int], size: Sequence[int], rng: np.random.Generator, n: int, *, last_start: bool = False
) -> np.ndarray:
    """``n`` start corners, per axis uniform over ``0 .. shape - size - 1`` as the established code
    draws them (the last valid start ``shape - size`` is never proposed), or over
    every valid start ``0 .. shape - size`` with ``last_start``. An axis the patch covers whole starts
    at 0."""
    room = np.asarray(shape, dtype=np.int64) - np.asarray(size, dtype=np.int64)
    high = np.maximum(room + 1 if last_start else room, 1)
    return rng.integers(0, high, size=(n, 3), dtype=np.int64)


def centred_starts(voxels: np.ndarray, shape: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """Start corners of patches centred on ``voxels`` (``n x 3``): ``voxel - size // 2`` clamped so the
    patch stays inside the case."""
    size_arr = np.asarray(size, dtype=np.int64)
    high = np.asarray(shape, dtype=np.int64) - size_arr
    return np.clip(np.asarray(voxels, dtype=np.int64) - size_arr // 2, 0, high)


def trials_for(
    ctx: QueryContext, normal: int = TRIALS_PER_CASE, starting: int = STARTING_TRIALS_PER_CASE
) -> int:
    """Draws per case visit: more for the starting budget (loop 0), which must not fail lightly."""
    return starting if ctx.loop == 0 else normal


class CaseOccupancy:
    """What one case already holds: existing boxes and the cost-free mask; accepts or rejects proposed
    boxes of the case's patch size.

    A box is acceptable when its intersection with every existing box, as a fraction of the box's volume,
    is at most ``patch_overlap`` (0: no shared voxel at all), and the fraction of its voxels that are
    free (cost-free layer != 255) is at most ``free_overlap``.
    """

    def __init__(
        self,
        *,
        shape: Sequence[int],
        size: Sequence[int],
        patch_overlap: float = 0.0,
        free_overlap: float = 1.0,
        free: np.ndarray | None = None,
    ) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.size = tuple(int(s) for s in size)
        self.volume = int(np.prod(self.size))
        self.patch_overlap = float(patch_overlap)
        self.free_overlap = float(free_overlap)
        self.free = free
        self._overlap_limit = overlap_limit(self.size, self.patch_overlap)
        self._free_limit = overlap_limit(self.size, self.free_overlap)
        self._starts = np.empty((0, 3), dtype=np.int64)
        self._stops = np.empty((0, 3), dtype=np.int64)

    def __len__(self) -> int:
        return len(self._starts)

    def add_box(self, start: Sequence[int], size: Sequence[int]) -> None:
        start_arr = np.asarray(start, dtype=np.int64).reshape(1, 3)
        self._starts = np.concatenate([self._starts, start_arr])
        self._stops = np.concatenate([self._stops, start_arr + np.asarray(size, dtype=np.int64)])

    def add(self, start: Sequence[int]) -> None:
        self.add_box(start, self.size)

    def overlap_ok(self, starts: np.ndarray) -> np.ndarray:
        """Boolean per proposed start: does the box respect ``patch_overlap`` against every existing box?"""
        starts = np.asarray(starts, dtype=np.int64).reshape(-1, 3)
        if not len(self._starts):
            return np.ones(len(starts), dtype=bool)
        low = np.maximum(starts[:, None, :], self._starts[None])
        high = np.minimum(starts[:, None, :] + np.asarray(self.size), self._stops[None])
        shared = np.clip(high - low, 0, None).prod(axis=2)
        return (shared <= self._overlap_limit).all(axis=1)

    def free_voxels(self, start: Sequence[int]) -> int:
        if self.free is None:
            return 0
        box = tuple(slice(int(a), int(a) + s) for a, s in zip(start, self.size, strict=True))
        return int(np.count_nonzero(self.free[box]))

    def first_acceptable(self, starts: np.ndarray) -> int | None:
        """Index of the first acceptable proposal, or None."""
        for index in np.flatnonzero(self.overlap_ok(starts)):
            if self.free_overlap >= 1.0 or self.free_voxels(starts[index]) <= self._free_limit:
                return int(index)
        return None


class CaseRotation:
    """Pool cases visited round-robin in a seeded shuffled order; a case can be dropped for good."""

    def __init__(self, cases: Sequence[str], rng: np.random.Generator) -> None:
        order = rng.permutation(len(cases))
        self._cases = [cases[i] for i in order]
        self._position = 0

    def __len__(self) -> int:
        return len(self._cases)

    def __iter__(self):
        return iter(list(self._cases))

    def take(self) -> str:
        """The next case; the rotation moves on past it."""
        if not self._cases:
            raise PlacementError("no pool case left to visit")
        case = self._cases[self._position]
        self._position = (self._position + 1) % len(self._cases)
        return case

    def drop(self, case: str) -> None:
        index = self._cases.index(case)
        del self._cases[index]
        if index < self._position:
            self._position -= 1
        if self._position >= len(self._cases):
            self._position = 0


class PlacementSession:
    """State of one ``place`` call: the oracle, the query context, per-case occupancy and the patches
    placed so far (in order)."""

    def __init__(self, oracle: Dataset, ctx: QueryContext) -> None:
        self.oracle = oracle
        self.ctx = ctx
        # sorted: the seeded shuffles must not depend on the order an adapter lists its files in
        self.cases = sorted(oracle.pool_cases())
        self.placed: list[Patch] = []
        self.shared: dict[str, Any] = {}
        """Per-call caches that the phases of one strategy share (e.g. ground truth read once)."""
        self._occupancy: dict[str, CaseOccupancy] = {}
        self._annotated: dict[str, list[Patch]] = {}
        for patch in ctx.annotated:
            self._annotated.setdefault(oracle.case_of_file(patch.file), []).append(patch)

    @property
    def remaining(self) -> int:
        return self.ctx.query_size - len(self.placed)

    def occupancy(self, case: str) -> CaseOccupancy:
        if case not in self._occupancy:
            shape = tuple(int(d) for d in self.oracle.shape(case))
            occupancy = CaseOccupancy(
                shape=shape,
                size=case_patch_size(shape, self.ctx.patch_size),
                patch_overlap=self.ctx.patch_overlap,
                free_overlap=self.ctx.free_overlap,
                free=self._free_mask(case, shape),
            )
            for patch in self._annotated.get(case, ()):
                occupancy.add_box(patch.start, patch.size)
            self._occupancy[case] = occupancy
        return self._occupancy[case]

    def _free_mask(self, case: str, shape: tuple[int, ...]) -> np.ndarray | None:
        if self.ctx.free_overlap >= 1.0:
            return None
        layer = self.oracle.read_free_labels(case)
        if layer is None:
            return None
        layer = np.asarray(layer)
        if layer.shape != shape:
            raise PlacementError(
                f"case {case!r}: cost-free layer has shape {layer.shape}, the case has shape {shape}"
            )
        free = layer != NOT_FREE
        return free if free.any() else None

    def search(self, case: str, propose: Proposer, trials: int) -> Patch | None:
        """Up to ``trials`` proposals for ``case``; the first acceptable one is placed and returned.
        None when none was acceptable or the proposer had nothing to offer."""
        occupancy = self.occupancy(case)
        batch = _FIRST_BATCH
        left = trials
        while left > 0:
            starts = propose(min(batch, left))
            if starts is None or not len(starts):
                return None
            left -= len(starts)
            batch = min(batch * 4, _MAX_BATCH)
            index = occupancy.first_acceptable(starts)
            if index is not None:
                return self.accept(case, starts[index])
        return None

    def accept(self, case: str, start: Sequence[int]) -> Patch:
        occupancy = self.occupancy(case)
        occupancy.add(start)
        patch = Patch(file=case + self.oracle.file_ending, start=start, size=occupancy.size)
        self.placed.append(patch)
        return patch

    def shortfall(self, who: str, reason: str) -> PlacementError:
        """The error for a query that cannot be completed, naming how many patches were placed."""
        if not self.cases:
            reason = "the dataset has no pool cases"
        return PlacementError(
            f"{who}: placed only {len(self.placed)} of {self.ctx.query_size} patches of size "
            f"{'x'.join(map(str, self.ctx.patch_size))} on {len(self.cases)} pool cases: {reason}"
        )


def place_uniform(
    session: PlacementSession,
    count: int,
    rng_cases: np.random.Generator,
    rng_positions: np.random.Generator,
    trials: int,
    who: str,
    last_start: bool = False,
) -> list[Patch]:
    """Place ``count`` patches at uniform positions (:func:`uniform_starts`), cases visited
    round-robin; a case where ``trials`` draws find no room is dropped from the rotation, which goes on
    with the next case."""
    rotation = CaseRotation(session.cases, rng_cases)
    placed: list[Patch] = []
    while len(placed) < count:
        if not len(rotation):
            raise session.shortfall(who, f"no case has room left after {trials} draws per case")
        case = rotation.take()
        occupancy = session.occupancy(case)
        patch = session.search(
            case,
            lambda n, o=occupancy: uniform_starts(o.shape, o.size, rng_positions, n, last_start=last_start),
            trials,
        )
        if patch is None:
            logger.debug(
                "%s: no room found on %s after %d draws; dropped from the rotation", who, case, trials
            )
            rotation.drop(case)
        else:
            placed.append(patch)
    return placed
