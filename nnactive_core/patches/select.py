"""Greedy best-first selection of non-overlapping patches on one case's patch-score grid.

Candidates are visited by descending score (ties: lower flat grid index first) and accepted unless
they overlap an occupied box (annotated patches of the case, patches accepted before in this query)
by more than ``patch_overlap`` of their volume, or are not ``allowed`` (the free-region limit), until
the quota is reached.

The grid is never sorted as a whole up front: it is cut into bands of descending score and doubling
size (a partition around a threshold), each band is screened against the occupied boxes with array
operations and only its survivors are sorted. A case whose quota fills among its best few thousand
positions costs a few linear passes; the worst case costs about one full sort.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from nnactive_core.patches.aggregate import grid_starts
from nnactive_core.patches.boxes import OccupiedBoxes, conflicts

FIRST_CHUNK = 2048


def ranked_chunks(values: np.ndarray, first: int = FIRST_CHUNK) -> Iterator[np.ndarray]:
    """Flat indices of ``values`` in bands of descending value and roughly doubling size: every index
    of a band has a higher value than every index of later bands, and ties never straddle two bands.
    Within a band the indices are ascending (not sorted by value). ``values`` must not contain NaN."""
    flat = np.asarray(values).reshape(-1)
    size = max(1, int(first))
    upper = None
    while True:
        remaining = flat if upper is None else flat[flat < upper]
        if remaining.size == 0:
            return
        if remaining.size <= size:
            threshold = remaining.min()
        else:
            threshold = np.partition(remaining, remaining.size - size)[remaining.size - size]
        del remaining
        inside = flat >= threshold
        if upper is not None:
            inside &= flat < upper
        yield np.flatnonzero(inside)
        upper = threshold
        size *= 2


def select_greedy(
    scores: np.ndarray,
    *,
    stride: Sequence[int],
    kernel: Sequence[int],
    quota: int,
    occupied: OccupiedBoxes,
    patch_overlap: float = 0.0,
    allowed: np.ndarray | None = None,
    first_chunk: int = FIRST_CHUNK,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick up to ``quota`` boxes of size ``kernel`` from the grid ``scores`` (shape = grid).

    Returns ``(starts n x 3 int64, scores n)`` in the order of acceptance. Accepted boxes are added to
    ``occupied``, so a later call for another pool of the same case avoids them. ``allowed`` (bool,
    shape = grid) marks the starts that may be chosen at all."""
    scores = np.asarray(scores)
    grid = scores.shape
    kernel = tuple(int(k) for k in kernel)
    starts_found: list[np.ndarray] = []
    scores_found: list[float] = []
    if quota <= 0:
        return np.zeros((0, 3), dtype=np.int64), np.zeros(0, dtype=np.float64)
    flat_scores = scores.reshape(-1)
    for chunk in ranked_chunks(scores, first_chunk):
        if allowed is not None:
            chunk = chunk[allowed.reshape(-1)[chunk]]
        starts = grid_starts(chunk, grid, stride)
        # screen the band before sorting it: occupied boxes usually rule out most of it
        survivors = occupied.free(starts, kernel, patch_overlap)
        # the band is in ascending index order, so a stable sort ranks ties by lower index first
        survivors = survivors[np.argsort(-flat_scores[chunk[survivors]], kind="stable")]
        while survivors.size and len(starts_found) < quota:
            start = starts[survivors[0]]
            starts_found.append(start)
            scores_found.append(float(flat_scores[chunk[survivors[0]]]))
            occupied.add(start, kernel)
            survivors = survivors[1:]
            survivors = survivors[~conflicts(starts[survivors], kernel, start, kernel, patch_overlap)]
        if len(starts_found) >= quota:
            break
    if not starts_found:
        return np.zeros((0, 3), dtype=np.int64), np.zeros(0, dtype=np.float64)
    return np.stack(starts_found).astype(np.int64), np.asarray(scores_found, dtype=np.float64)
