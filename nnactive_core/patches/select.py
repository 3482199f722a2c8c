"""Greedy best-first selection of non-overlapping patches on one case's patch-score grid.

Candidates are visited by descending score (ties: lower flat grid index first) and accepted unless
their start is blocked (:class:`BlockedStarts`: they would overlap an annotated patch of the case or a
patch accepted before in this query by more than ``patch_overlap`` of their volume, or lie too much in
cost-free regions), until the quota is reached.

The grid is never sorted as a whole up front: it is cut into bands of descending score and growing
size (a partition around a threshold) that leave out starts blocked so far, and only a band's
survivors are sorted. A case whose quota fills among its best few thousand positions costs a few
linear passes; the worst case costs about one full sort.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from nnactive_core.patches.aggregate import grid_starts
from nnactive_core.patches.boxes import BlockedStarts

FIRST_CHUNK = 2048


def ranked_chunks(
    values: np.ndarray, first: int = FIRST_CHUNK, excluded: np.ndarray | None = None, growth: int = 4
) -> Iterator[np.ndarray]:
    """Flat indices of ``values`` in bands of descending value and growing size: every index of a band
    has a higher value than every index of later bands, and ties never straddle two bands. Within a
    band the indices are ascending (not sorted by value). ``excluded`` (flat bool, may change between
    bands) drops indices from the bands still to come. ``values`` must not contain NaN."""
    flat = np.asarray(values).reshape(-1)
    size = max(1, int(first))
    upper = None
    while True:
        keep = np.ones(flat.shape, dtype=bool) if excluded is None else ~excluded
        if upper is not None:
            keep &= flat < upper
        remaining = np.flatnonzero(keep)
        del keep
        if remaining.size == 0:
            return
        candidates = flat[remaining]
        if remaining.size <= size:
            threshold = candidates.min()
        else:
            threshold = np.partition(candidates, remaining.size - size)[remaining.size - size]
        yield remaining[candidates >= threshold]
        upper = threshold
        size *= growth


def select_greedy(
    scores: np.ndarray, *, quota: int, blocked: BlockedStarts, first_chunk: int = FIRST_CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """Pick up to ``quota`` candidates from the grid ``scores`` (shape = ``blocked.grid``), skipping
    the starts ``blocked`` rules out.

    Returns ``(starts n x 3 int64, scores n float64)`` in the order of acceptance. Accepted boxes are
    occupied in ``blocked``, so a later call for another pool of the same case avoids them."""
    scores = np.asarray(scores)
    if scores.shape != blocked.grid:
        raise ValueError(f"score grid of shape {scores.shape} does not match the start grid {blocked.grid}")
    flat_scores = scores.reshape(-1)
    chosen: list[int] = []
    if quota <= 0:
        return np.zeros((0, 3), dtype=np.int64), np.zeros(0, dtype=np.float64)
    for chunk in ranked_chunks(scores, first_chunk, excluded=blocked.flat):
        survivors = chunk[~blocked.flat[chunk]]
        # the band is in ascending index order, so a stable sort ranks ties by lower index first
        survivors = survivors[np.argsort(-flat_scores[survivors], kind="stable")]
        while survivors.size and len(chosen) < quota:
            best = int(survivors[0])
            chosen.append(best)
            blocked.occupy(grid_starts(np.array([best]), blocked.grid, blocked.stride)[0], blocked.kernel)
            survivors = survivors[1:]
            survivors = survivors[~blocked.flat[survivors]]
        if len(chosen) >= quota:
            break
    index = np.asarray(chosen, dtype=np.int64)
    return grid_starts(index, blocked.grid, blocked.stride), flat_scores[index].astype(np.float64)
