"""Box overlap on the grid of candidate starts.

Boxes are half-open ``[start, start + size)`` on each of the axes (z, y, x), like :class:`Patch`. The
overlap rule of the whole project lives here: a box may overlap an occupied box by at most
``patch_overlap`` of its *own* volume; ``patch_overlap = 0`` forbids any intersection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from nnactive_core.patches.patch import Patch


def overlap_limit(size: Sequence[int], patch_overlap: float) -> float:
    """Largest intersection (in voxels) a box of ``size`` may have with any occupied box."""
    return float(patch_overlap) * float(np.prod(np.asarray(size, dtype=np.int64)))


class BlockedStarts:
    """The grid starts of one case that can no longer be chosen, as a boolean grid.

    Candidates are boxes of size ``kernel`` at ``grid index * stride``. :meth:`occupy` marks every start
    whose box would overlap the occupied box by more than ``patch_overlap`` of its volume. Only starts
    within one kernel of the box are touched, so the cost is independent of the grid size, and one
    instance serves all pools of a case (their candidates share the grid)."""

    def __init__(
        self,
        grid: Sequence[int],
        stride: Sequence[int],
        kernel: Sequence[int],
        patch_overlap: float = 0.0,
        excluded: np.ndarray | None = None,
    ):
        self.grid = tuple(int(n) for n in grid)
        self.stride = tuple(int(s) for s in stride)
        self.kernel = tuple(int(k) for k in kernel)
        self.limit = overlap_limit(self.kernel, patch_overlap)
        if excluded is None:
            self.mask = np.zeros(self.grid, dtype=bool)
        else:
            self.mask = np.array(excluded, dtype=bool, copy=True).reshape(self.grid)
        self.flat = self.mask.reshape(-1)

    def occupy(self, start: Sequence[int], size: Sequence[int]) -> None:
        region, extents = [], []
        for axis in range(3):
            step, kernel, count = self.stride[axis], self.kernel[axis], self.grid[axis]
            low, high = int(start[axis]), int(start[axis]) + int(size[axis])
            # starts g * step that intersect [low, high): low - kernel < g * step < high
            first = max(0, -(-(low - kernel + 1) // step))
            last = min(count - 1, (high - 1) // step)
            if first > last:
                return
            positions = np.arange(first, last + 1, dtype=np.int64) * step
            region.append(slice(first, last + 1))
            extents.append(np.minimum(positions + kernel, high) - np.maximum(positions, low))
        view = self.mask[tuple(region)]
        if self.limit <= 0:
            view[...] = True
        else:
            shared = extents[0][:, None, None] * extents[1][None, :, None] * extents[2][None, None, :]
            view |= shared > self.limit

    def occupy_patches(self, patches: Iterable[Patch]) -> None:
        for patch in patches:
            self.occupy(patch.start, patch.size)


def violates(patch: Patch, others: Iterable[Patch], patch_overlap: float = 0.0) -> Patch | None:
    """The first of ``others`` that ``patch`` overlaps by more than ``patch_overlap`` of its volume."""
    limit = overlap_limit(patch.size, patch_overlap)
    for other in others:
        if patch.intersection_volume(other) > limit:
            return other
    return None
