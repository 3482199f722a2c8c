"""Tiny synthetic 3D data: probability stacks, label maps and an in-memory oracle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nnactive_core.strategies.api import QueryContext


def make_probabilities(
    members: int = 3,
    classes: int = 3,
    shape: Sequence[int] = (12, 12, 12),
    seed: int = 0,
    dtype: str = "float32",
    sharpness: float = 3.0,
) -> np.ndarray:
    """members x classes x Z x Y x X softmax probabilities of smooth random logits, so members agree
    in places and disagree in others, like a real ensemble."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(1, classes, *shape))
    own = rng.normal(size=(members, classes, *shape))
    logits = sharpness * (shared + 0.5 * own)
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return probabilities.astype(dtype)


def make_label_map(
    shape: Sequence[int] = (24, 24, 24), classes: int = 3, seed: int = 0, empty: bool = False
) -> np.ndarray:
    """Background 0 with one ball per foreground class (radius shrinking with the class index, so
    higher classes are rarer). ``empty`` gives a case without foreground."""
    labels = np.zeros(tuple(shape), dtype=np.uint8)
    if empty:
        return labels
    rng = np.random.default_rng(seed)
    grid = np.indices(labels.shape)
    for value in range(1, classes):
        radius = max(1.0, min(shape) / (3.0 + 1.5 * value))
        centre = [rng.uniform(radius, s - radius) for s in shape]
        distance = sum((axis - c) ** 2 for axis, c in zip(grid, centre, strict=True))
        labels[distance <= radius**2] = value
    return labels


class SyntheticDataset:
    """An in-memory :class:`nnactive_core.datasets.api.Dataset` (the oracle) for strategy tests."""

    file_ending = ".nii.gz"
    background = 0

    def __init__(
        self,
        label_maps: Mapping[str, np.ndarray],
        labels: Mapping[str, int] | None = None,
        free_labels: Mapping[str, np.ndarray] | None = None,
        name: str = "Dataset999_Synthetic",
    ):
        self.name = name
        self.root = Path("/nonexistent") / name
        self._label_maps = dict(label_maps)
        self._free = dict(free_labels or {})
        if labels is None:
            highest = max(int(m.max()) for m in self._label_maps.values())
            labels = {"background": 0, **{f"class_{v}": v for v in range(1, max(highest, 1) + 1)}}
        self.labels = dict(labels)
        self.ignore_label = max(self.labels.values()) + 1

    @classmethod
    def generate(
        cls,
        cases: int = 6,
        shape: Sequence[int] = (24, 24, 24),
        classes: int = 3,
        seed: int = 0,
        empty_cases: int = 0,
    ) -> SyntheticDataset:
        maps = {
            f"case_{i:03d}": make_label_map(shape, classes, seed=seed + i, empty=i < empty_cases)
            for i in range(cases)
        }
        labels = {"background": 0, **{f"class_{v}": v for v in range(1, classes)}}
        return cls(maps, labels=labels)

    def pool_cases(self) -> list[str]:
        return sorted(self._label_maps)

    def validation_cases(self) -> list[str]:
        return []

    def image_files(self, case: str, split: str = "pool") -> list[Path]:
        return [self.root / "imagesTr" / f"{case}_0000{self.file_ending}"]

    def label_file(self, case: str, split: str = "pool") -> Path:
        return self.root / "labelsTr" / f"{case}{self.file_ending}"

    def read_labels(self, case: str, split: str = "pool") -> np.ndarray:
        return self._label_maps[case].copy()

    def read_free_labels(self, case: str) -> np.ndarray | None:
        free = self._free.get(case)
        return None if free is None else free.copy()

    def shape(self, case: str) -> tuple[int, int, int]:
        return tuple(int(s) for s in self._label_maps[case].shape)  # type: ignore[return-value]

    def case_of_file(self, file: str) -> str:
        return file[: -len(self.file_ending)] if file.endswith(self.file_ending) else file


def make_query_context(dataset: SyntheticDataset | None = None, **overrides) -> QueryContext:
    """A QueryContext with small defaults; ``overrides`` replace any field."""
    label_values = tuple(sorted((dataset.labels if dataset else {"background": 0, "a": 1, "b": 2}).values()))
    fields = dict(
        patch_size=(6, 6, 6),
        query_size=4,
        patches_per_case=2,
        seed=12345,
        loop=1,
        label_values=label_values,
        query_steps=5,
    )
    fields.update(overrides)
    return QueryContext(**fields)
