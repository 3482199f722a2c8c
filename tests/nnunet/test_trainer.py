"""The partial-label trainer's patch sampling (no training here)."""

from __future__ import annotations

import types

import numpy as np
import pytest

from nnactive_core.nnunet.trainer import OffsetSamplingDataLoader

PATCH = (16, 16, 16)
SHAPE = (40, 40, 40)


@pytest.fixture(scope="module")
def loader():
    from nnunetv2.utilities.label_handling.label_handling import LabelManager

    labels = LabelManager({"background": 0, "a": 1, "ignore": 2}, regions_class_order=None)
    data = types.SimpleNamespace(identifiers=["case"])
    return OffsetSamplingDataLoader(data, 2, PATCH, PATCH, labels, oversample_foreground_percent=0.33)


def _locations(voxel):
    return {(-1, 0, 1): np.array([[0, *voxel]]), 1: np.array([[0, 30, 30, 30]])}


@pytest.mark.parametrize(
    "voxel, expected",
    [
        # interior: every position in the patch
        ((20, 20, 20), [range(16)] * 3),
        # the patch centre stays in the case: a voxel at the far border sits in the upper half
        ((39, 39, 39), [range(8, 16)] * 3),
        # nnU-Net clamps the patch at the near border (no padding needed here): position = voxel
        ((0, 5, 12), [range(0, 1), range(0, 6), range(0, 13)]),
    ],
)
def test_annotated_voxel_lies_inside_the_patch_at_every_allowed_position(loader, voxel, expected):
    np.random.seed(0)
    positions = []
    for _ in range(3000):
        lower, upper = loader.get_bbox(SHAPE, False, _locations(voxel))
        assert all(lo <= v < up for lo, v, up in zip(lower, voxel, upper, strict=True))
        positions.append([v - lo for v, lo in zip(voxel, lower, strict=True)])
    positions = np.array(positions)
    for axis in range(3):
        assert sorted(np.unique(positions[:, axis])) == list(expected[axis])


def test_interior_voxel_positions_are_uniform(loader):
    np.random.seed(1)
    positions = [20 - loader.get_bbox(SHAPE, False, _locations((20, 20, 20)))[0][0] for _ in range(8000)]
    counts = np.bincount(positions, minlength=PATCH[0])
    assert len(counts) == PATCH[0] and counts.min() > 0.7 * counts.mean()


def test_forced_foreground_is_centred_on_the_class_voxel(loader):
    np.random.seed(2)
    lower, _ = loader.get_bbox(SHAPE, True, _locations((5, 5, 5)))
    assert lower == [30 - PATCH[0] // 2] * 3
