"""Pools with controlled foreground for the plugin's tests, on the core's in-memory oracle."""

import numpy as np
import pytest

from nnactive_core.testing.synthetic import SyntheticDataset

LABELS = {"background": 0, "organ": 1, "lesion": 2}


class CountingDataset(SyntheticDataset):
    """Counts ground-truth reads per case."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads: dict[str, int] = {}

    def read_labels(self, case, split="pool"):
        self.reads[case] = self.reads.get(case, 0) + 1
        return super().read_labels(case, split)


def ball(shape, centre, radius) -> np.ndarray:
    grid = np.indices(shape)
    return sum((axis - c) ** 2 for axis, c in zip(grid, centre, strict=True)) <= radius**2


def blob_case(rng, shape=(32, 32, 32), organ=6, lesion=2, with_lesion=True) -> np.ndarray:
    """An ``organ`` ball and (optionally) a ``lesion`` ball inside it, away from the case border, so
    patches of up to 4^3 centred on them are never clamped."""
    labels = np.zeros(shape, np.uint8)
    centre = [int(rng.integers(organ + 3, s - organ - 3)) for s in shape]
    labels[ball(shape, centre, organ)] = 1
    if with_lesion:
        labels[ball(shape, centre, lesion)] = 2
    return labels


@pytest.fixture
def blob_pool():
    """Factory: ``blob_pool(cases=30, shape=..., empty=(), lesion_cases=None)`` -> CountingDataset.
    ``empty`` lists case indices without foreground; ``lesion_cases`` those with a lesion (all when
    None)."""

    def make(cases=30, shape=(32, 32, 32), empty=(), lesion_cases=None, seed=0):
        rng = np.random.default_rng(seed)
        maps = {}
        for i in range(cases):
            name = f"case_{i:03d}"
            if i in empty:
                maps[name] = np.zeros(shape, np.uint8)
            else:
                maps[name] = blob_case(rng, shape, with_lesion=lesion_cases is None or i in lesion_cases)
        return CountingDataset(maps, labels=LABELS)

    return make


@pytest.fixture
def counting_dataset():
    """The :class:`CountingDataset` class: ``counting_dataset(label_maps, labels=LABELS)``."""

    def make(label_maps, labels=LABELS, **kwargs):
        return CountingDataset(label_maps, labels=labels, **kwargs)

    return make
