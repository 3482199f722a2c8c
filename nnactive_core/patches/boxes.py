"""Vectorised box maths for the query engine: many candidate boxes of one size against one box.

Boxes are half-open ``[start, start + size)`` on each of the axes (z, y, x), like :class:`Patch`. The
overlap rule of the whole project lives here: a box may overlap an occupied box by at most
``patch_overlap`` of its *own* volume; ``patch_overlap = 0`` forbids any intersection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from nnactive_core.patches.patch import Patch


def intersection_volumes(
    starts: np.ndarray, size: Sequence[int], box_start: Sequence[int], box_size: Sequence[int]
) -> np.ndarray:
    """Voxels shared by each of the boxes ``starts`` (n x 3, all of ``size``) with one box."""
    starts = np.asarray(starts, dtype=np.int64)
    size = np.asarray(size, dtype=np.int64)
    box_start = np.asarray(box_start, dtype=np.int64)
    box_stop = box_start + np.asarray(box_size, dtype=np.int64)
    extent = np.minimum(starts + size, box_stop) - np.maximum(starts, box_start)
    np.clip(extent, 0, None, out=extent)
    return extent[:, 0] * extent[:, 1] * extent[:, 2]


def overlap_limit(size: Sequence[int], patch_overlap: float) -> float:
    """Largest intersection (in voxels) a box of ``size`` may have with any occupied box."""
    return float(patch_overlap) * float(np.prod(np.asarray(size, dtype=np.int64)))


def conflicts(
    starts: np.ndarray,
    size: Sequence[int],
    box_start: Sequence[int],
    box_size: Sequence[int],
    patch_overlap: float = 0.0,
) -> np.ndarray:
    """Boolean per box of ``starts`` (all of ``size``): True where it overlaps the one box by more
    than ``patch_overlap`` of its own volume."""
    if patch_overlap > 0:
        limit = overlap_limit(size, patch_overlap)
        return intersection_volumes(starts, size, box_start, box_size) > limit
    # without allowed overlap, comparisons suffice: the boxes intersect iff they do on every axis
    result = None
    for axis in range(3):
        column = starts[:, axis]
        low = int(box_start[axis]) - int(size[axis])
        high = int(box_start[axis]) + int(box_size[axis])
        hit = (column > low) & (column < high)
        result = hit if result is None else result & hit
    return result


class OccupiedBoxes:
    """The boxes of one case that new patches must respect: its annotated patches and the patches
    accepted so far in this query (of every pool)."""

    def __init__(self, patches: Iterable[Patch] = ()):
        self._starts: list[tuple[int, int, int]] = []
        self._sizes: list[tuple[int, int, int]] = []
        for patch in patches:
            self.add(patch.start, patch.size)

    def __len__(self) -> int:
        return len(self._starts)

    def add(self, start: Sequence[int], size: Sequence[int]) -> None:
        self._starts.append(tuple(int(v) for v in start))  # type: ignore[arg-type]
        self._sizes.append(tuple(int(v) for v in size))  # type: ignore[arg-type]

    def free(self, starts: np.ndarray, size: Sequence[int], patch_overlap: float = 0.0) -> np.ndarray:
        """Indices (ascending) of the boxes of ``starts`` (all of ``size``) that overlap no occupied
        box by more than ``patch_overlap`` of their volume."""
        index = np.arange(len(starts))
        for box_start, box_size in zip(self._starts, self._sizes, strict=True):
            keep = ~conflicts(starts[index], size, box_start, box_size, patch_overlap)
            index = index[keep]
        return index


def violates(patch: Patch, others: Iterable[Patch], patch_overlap: float = 0.0) -> Patch | None:
    """The first of ``others`` that ``patch`` overlaps by more than ``patch_overlap`` of its volume."""
    limit = overlap_limit(patch.size, patch_overlap)
    for other in others:
        if patch.intersection_volume(other) > limit:
            return other
    return None
