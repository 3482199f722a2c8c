"""Ground truth of pool cases as the foreground-aware strategies need it, read through the oracle once
per case and query.

:class:`CaseLabels` holds one case's label map (in the smallest unsigned dtype that fits), its voxel
count per label, and, computed on first use and kept, each label's voxel locations and inner border
(the label mask minus its 6-neighbourhood erosion). :class:`LabelStore` keeps them for the whole query,
least recently used first out once a memory budget is exceeded (a case evicted is read again when
visited again; with the default budget every case of an ordinary pool stays).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset
    from nnactive_core.strategies.placement import PlacementSession

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 4 << 30
SHARED_KEY = "nnactive_random_fg.labels"
_DENSE_FRACTION = 0.25
"""Labels covering at least this fraction of a case are sampled by rejection from uniform voxels
instead of listing their (many) locations, e.g. background."""
_REJECTION_ROUNDS = 32


def _compact(labels: np.ndarray, case: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"case {case!r}: ground truth must be 3D (z, y, x), got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        rounded = np.rint(labels)
        if not np.array_equal(rounded, labels):
            raise ValueError(f"case {case!r}: ground truth holds non-integer values")
        labels = rounded
    if labels.size and labels.min() < 0:
        raise ValueError(f"case {case!r}: ground truth holds negative label values")
    top = int(labels.max()) if labels.size else 0
    dtype = np.uint8 if top < 1 << 8 else np.uint16 if top < 1 << 16 else np.uint32
    return np.ascontiguousarray(labels, dtype=dtype)


def _index_dtype(size: int) -> type:
    return np.uint32 if size < 1 << 32 else np.int64


class CaseLabels:
    """One case's ground truth with lazily computed, cached per-label voxel locations and borders."""

    def __init__(self, case: str, labels: np.ndarray) -> None:
        self.case = case
        self.labels = _compact(labels, case)
        self.shape: tuple[int, int, int] = self.labels.shape  # type: ignore[assignment]
        self.counts = np.bincount(self.labels.ravel())
        self._locations: dict[int, np.ndarray] = {}
        self._borders: dict[int, np.ndarray] = {}

    @property
    def nbytes(self) -> int:
        cached = [*self._locations.values(), *self._borders.values()]
        return self.labels.nbytes + self.counts.nbytes + sum(a.nbytes for a in cached)

    def count(self, value: int) -> int:
        return int(self.counts[value]) if 0 <= value < len(self.counts) else 0

    def present(self, values) -> tuple[int, ...]:
        """Those of ``values`` that occur in the case, in the given order."""
        return tuple(v for v in values if self.count(v) > 0)

    def locations(self, value: int) -> np.ndarray:
        """Flat indices of the voxels of ``value`` (computed once)."""
        if value not in self._locations:
            found = np.flatnonzero(self.labels.ravel() == value)
            self._locations[value] = found.astype(_index_dtype(self.labels.size))
        return self._locations[value]

    def border(self, value: int) -> np.ndarray:
        """Flat indices of the inner border of ``value``: its mask minus the mask's binary erosion with the
        6-neighbourhood (outside the case counts as not-the-label). Computed once, on the label's bounding
        box grown by one voxel, which gives the same result as on the whole case."""
        if value not in self._borders:
            from scipy import ndimage

            locations = self.locations(value)
            if not len(locations):
                self._borders[value] = locations
                return locations
            coords = np.unravel_index(locations, self.shape)
            low = np.maximum([c.min() - 1 for c in coords], 0)
            high = np.minimum([c.max() + 2 for c in coords], self.shape)
            box = tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))
            mask = self.labels[box] == value
            eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1))
            edge = np.argwhere(mask & ~eroded) + low
            flat = np.ravel_multi_index(tuple(edge.T), self.shape)
            self._borders[value] = flat.astype(_index_dtype(self.labels.size))
        return self._borders[value]

    def draw_voxels(self, value: int, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` voxels (``n x 3``) drawn uniformly with replacement from the voxels of ``value``."""
        count = self.count(value)
        if count == 0:
            raise ValueError(f"case {self.case!r} has no voxel of label {value}")
        if value not in self._locations and count >= _DENSE_FRACTION * self.labels.size:
            flat = self._rejection_draw(value, rng, n)
        else:
            locations = self.locations(value)
            flat = locations[rng.integers(0, len(locations), size=n)]
        return np.stack(np.unravel_index(flat, self.shape), axis=1)

    def _rejection_draw(self, value: int, rng: np.random.Generator, n: int) -> np.ndarray:
        """Uniform voxels of a dense label without listing it: draw uniform voxels, keep those of the label.
        Each kept voxel is uniform over the label; the rounds are bounded and fall back to the exact list."""
        ravelled = self.labels.ravel()
        fraction = self.count(value) / self.labels.size
        kept: list[np.ndarray] = []
        found = 0
        for _ in range(_REJECTION_ROUNDS):
            candidates = rng.integers(0, self.labels.size, size=int(np.ceil((n - found) / fraction)) + 8)
            hits = candidates[ravelled[candidates] == value]
            kept.append(hits)
            found += len(hits)
            if found >= n:
                return np.concatenate(kept)[:n]
        locations = self.locations(value)
        kept.append(locations[rng.integers(0, len(locations), size=n - found)])
        return np.concatenate(kept)

    def draw_border_voxels(self, value: int, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` voxels (``n x 3``) drawn uniformly with replacement from the inner border of ``value``."""
        border = self.border(value)
        if not len(border):
            raise ValueError(f"case {self.case!r} has no voxel of label {value}")
        flat = border[rng.integers(0, len(border), size=n)]
        return np.stack(np.unravel_index(flat, self.shape), axis=1)


class LabelStore:
    """:class:`CaseLabels` per case for one query, read through the oracle; least recently used cases go
    once the total exceeds ``max_bytes`` (the case just read always stays)."""

    def __init__(self, oracle: Dataset, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.oracle = oracle
        self.max_bytes = max_bytes
        self.reads = 0
        self._cases: OrderedDict[str, CaseLabels] = OrderedDict()

    @classmethod
    def of(cls, session: PlacementSession, max_bytes: int = DEFAULT_MAX_BYTES) -> LabelStore:
        """The store shared by every phase of one ``place`` call."""
        store = session.shared.get(SHARED_KEY)
        if store is None:
            store = session.shared[SHARED_KEY] = cls(session.oracle, max_bytes)
        return store

    def get(self, case: str) -> CaseLabels:
        if case in self._cases:
            self._cases.move_to_end(case)
            return self._cases[case]
        labels = CaseLabels(case, self.oracle.read_labels(case))
        self.reads += 1
        expected = tuple(int(d) for d in self.oracle.shape(case))
        if labels.shape != expected:
            raise ValueError(
                f"case {case!r}: ground truth has shape {labels.shape}, the dataset says {expected}"
            )
        self._cases[case] = labels
        self._evict()
        return labels

    def _evict(self) -> None:
        total = sum(entry.nbytes for entry in self._cases.values())
        while total > self.max_bytes and len(self._cases) > 1:
            case, entry = self._cases.popitem(last=False)
            total -= entry.nbytes
            logger.debug("label cache over %d bytes: %s evicted", self.max_bytes, case)
