"""The core's cost metrics: how many patches, voxels and foreground voxels an annotator labelled.

Per-class columns are named after the label *names* (``voxels_class_<name>``,
``patches_class_<name>``) so tables stay readable; the background gets its column too. Metrics whose
``unit`` is ``"voxels"`` also have a full-pool total (see :mod:`nnactive_core.costs.accounting`),
which the analysis turns into "% of the pool" columns.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nnactive_core.costs.api import CostMetric
from nnactive_core.patches.patch import Patch

VOXELS = "voxels"
FOREGROUND_VOXELS = "foreground_voxels"
PATCHES = "patches"
FOREGROUND_PATCHES = "patches_foreground"


def class_voxels_column(name: str) -> str:
    return f"voxels_class_{name}"


def class_patches_column(name: str) -> str:
    return f"patches_class_{name}"


def _foreground_values(label_values: Mapping[str, int], background: int) -> list[int]:
    return [value for value in label_values.values() if value != background]


class PatchCount(CostMetric):
    name = "patches"
    description = "Number of annotated patches."
    unit = "patches"

    def measure(
        self, patch: Patch, labels_in_patch: np.ndarray, label_values: Mapping[str, int], background: int
    ) -> dict[str, float]:
        return {PATCHES: 1}

    def estimate(self, patch: Patch, probabilities: np.ndarray | None) -> dict[str, float]:
        return {PATCHES: 1}


class VoxelCount(CostMetric):
    name = "voxels"
    description = "Number of annotated voxels (every voxel inside a patch)."
    unit = "voxels"

    def measure(
        self, patch: Patch, labels_in_patch: np.ndarray, label_values: Mapping[str, int], background: int
    ) -> dict[str, float]:
        return {VOXELS: int(labels_in_patch.size)}

    def estimate(self, patch: Patch, probabilities: np.ndarray | None) -> dict[str, float]:
        return {VOXELS: int(np.prod(patch.size))}


class ForegroundVoxelCount(CostMetric):
    name = "foreground-voxels"
    description = "Number of annotated voxels of any foreground class."
    unit = "voxels"

    def measure(
        self, patch: Patch, labels_in_patch: np.ndarray, label_values: Mapping[str, int], background: int
    ) -> dict[str, float]:
        foreground = np.isin(labels_in_patch, _foreground_values(label_values, background))
        return {FOREGROUND_VOXELS: int(np.count_nonzero(foreground))}

    def estimate(self, patch: Patch, probabilities: np.ndarray | None) -> dict[str, float] | None:
        """The expected number of foreground voxels: the sum of 1 - p(background). Channel 0 is the
        background, as label values are sorted and nnU-Net's background is 0."""
        if probabilities is None:
            return None
        return {FOREGROUND_VOXELS: float(np.sum(1.0 - probabilities[0], dtype=np.float64))}


class ClassVoxelCount(CostMetric):
    name = "class-voxels"
    description = "Number of annotated voxels per class (one column per label name)."
    unit = "voxels"

    def measure(
        self, patch: Patch, labels_in_patch: np.ndarray, label_values: Mapping[str, int], background: int
    ) -> dict[str, float]:
        values, counts = np.unique(labels_in_patch, return_counts=True)
        found = dict(zip(values.tolist(), counts.tolist(), strict=True))
        return {class_voxels_column(name): int(found.get(value, 0)) for name, value in label_values.items()}


class ClassPatchCount(CostMetric):
    name = "class-patches"
    description = "Number of patches containing each class, and containing any foreground."
    unit = "patches"

    def measure(
        self, patch: Patch, labels_in_patch: np.ndarray, label_values: Mapping[str, int], background: int
    ) -> dict[str, float]:
        present = set(np.unique(labels_in_patch).tolist())
        columns = {class_patches_column(name): int(value in present) for name, value in label_values.items()}
        columns[FOREGROUND_PATCHES] = int(bool(present & set(_foreground_values(label_values, background))))
        return columns


BASIC_COST_METRICS: list[CostMetric] = [
    PatchCount(),
    VoxelCount(),
    ForegroundVoxelCount(),
    ClassVoxelCount(),
    ClassPatchCount(),
]
