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


@pytest.fixture(scope="module")
def inside_loaders():
    """Network patch 16^3 inside a 24^3 augmentation box (the loader crops the box, the spatial
    transform its centre), with and without the random offset."""
    from nnunetv2.utilities.label_handling.label_handling import LabelManager

    labels = LabelManager({"background": 0, "a": 1, "ignore": 2}, regions_class_order=None)
    data = types.SimpleNamespace(identifiers=["case"])
    return {
        offset: OffsetSamplingDataLoader(
            data,
            2,
            (24, 24, 24),
            PATCH,
            labels,
            oversample_foreground_percent=0.33,
            offset=offset,
            inside=True,
        )
        for offset in (True, False)
    }


def _network_patch(lower, upper):
    """The network patch of a loader box: its centre crop (``floor(box / 2) - patch // 2``)."""
    return [lo + (up - lo) // 2 - p // 2 for lo, up, p in zip(lower, upper, PATCH, strict=True)]


@pytest.mark.parametrize("offset", [True, False])
@pytest.mark.parametrize("force_fg", [True, False])
@pytest.mark.parametrize("voxel", [(20, 20, 20), (39, 0, 38), (1, 39, 12)])
def test_inside_patches_hold_the_voxel_and_never_leave_the_case(inside_loaders, offset, force_fg, voxel):
    np.random.seed(3)
    locations = {(-1, 0, 1): np.array([[0, *voxel]]), 1: np.array([[0, *voxel]])}
    for _ in range(500):
        lower, upper = inside_loaders[offset].get_bbox(SHAPE, force_fg, locations)
        assert [up - lo for lo, up in zip(lower, upper, strict=True)] == [24] * 3
        start = _network_patch(lower, upper)
        assert all(0 <= s <= n - p for s, n, p in zip(start, SHAPE, PATCH, strict=True))
        assert all(s <= v < s + p for s, v, p in zip(start, voxel, PATCH, strict=True))


def test_inside_offset_positions_are_uniform_over_the_allowed_starts(inside_loaders):
    np.random.seed(4)
    voxel = (5, 20, 34)
    starts = np.array(
        [_network_patch(*inside_loaders[True].get_bbox(SHAPE, False, _locations(voxel))) for _ in range(6000)]
    )
    # allowed starts per axis: from max(0, v - 15) to min(v, 40 - 16)
    for axis, (low, high) in enumerate([(0, 5), (5, 20), (19, 24)]):
        counts = np.bincount(starts[:, axis] - low)
        assert len(counts) == high - low + 1 and counts.min() > 0.7 * counts.mean()


def test_a_case_shorter_than_the_patch_is_covered_whole():
    from nnunetv2.utilities.label_handling.label_handling import LabelManager

    labels = LabelManager({"background": 0, "a": 1, "ignore": 2}, regions_class_order=None)
    loader = OffsetSamplingDataLoader(
        types.SimpleNamespace(identifiers=["case"]), 2, (24, 24, 24), PATCH, labels, inside=True
    )
    np.random.seed(5)
    shape = (10, 40, 40)
    for force_fg in (False, True):
        for _ in range(200):
            start = _network_patch(*loader.get_bbox(shape, force_fg, _locations((4, 30, 30))))
            assert shape[0] - PATCH[0] <= start[0] <= 0
