"""The blocked-start grid agrees with Patch's own intersection arithmetic."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnactive_core.patches.aggregate import grid_shape, grid_starts, kernel_size
from nnactive_core.patches.boxes import BlockedStarts, overlap_limit, violates
from nnactive_core.patches.patch import Patch


def brute_force_blocked(shape, patch, stride, boxes, patch_overlap):
    grid = grid_shape(shape, patch, stride)
    kernel = kernel_size(shape, patch)
    starts = grid_starts(np.arange(int(np.prod(grid))), grid, stride)
    blocked = []
    for start in starts:
        candidate = Patch(file="c", start=start, size=kernel)
        blocked.append(
            any(candidate.intersection_volume(b) > patch_overlap * candidate.volume for b in boxes)
        )
    return np.array(blocked).reshape(grid)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(*[st.integers(1, 10)] * 3),
    patch=st.tuples(*[st.integers(1, 5)] * 3),
    stride=st.tuples(*[st.integers(1, 3)] * 3),
    patch_overlap=st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0]),
    data=st.data(),
)
def test_blocked_grid_matches_brute_force(shape, patch, stride, patch_overlap, data):
    boxes = []
    for _ in range(data.draw(st.integers(0, 3))):
        size = [data.draw(st.integers(1, s)) for s in shape]
        start = [data.draw(st.integers(0, s - z)) for s, z in zip(shape, size, strict=True)]
        boxes.append(Patch(file="c", start=start, size=size))
    blocked = BlockedStarts(
        grid_shape(shape, patch, stride), stride, kernel_size(shape, patch), patch_overlap
    )
    blocked.occupy_patches(boxes)
    np.testing.assert_array_equal(
        blocked.mask, brute_force_blocked(shape, patch, stride, boxes, patch_overlap)
    )
    assert np.shares_memory(blocked.flat, blocked.mask)


def test_zero_overlap_blocks_one_shared_voxel_but_not_touching_boxes():
    blocked = BlockedStarts((9, 9, 9), (1, 1, 1), (2, 2, 2))
    blocked.occupy((4, 4, 4), (2, 2, 2))
    assert blocked.mask[3, 3, 3] and blocked.mask[5, 5, 5]
    assert not blocked.mask[2, 4, 4] and not blocked.mask[6, 4, 4]
    assert blocked.mask.sum() == 27


def test_fraction_is_relative_to_the_candidate_volume():
    # candidate (1,0,0)+2^3 shares 2 of its 8 voxels with (0,0,0)+(2,2,1): 25 %
    for patch_overlap, expected in ((0.25, False), (0.2, True)):
        blocked = BlockedStarts((3, 3, 3), (1, 1, 1), (2, 2, 2), patch_overlap)
        blocked.occupy((0, 0, 0), (2, 2, 1))
        assert blocked.mask[1, 0, 0] == expected
    assert overlap_limit((2, 2, 2), 0.25) == 2.0


def test_excluded_starts_and_boxes_outside_the_grid():
    excluded = np.zeros((2, 2, 2), dtype=bool)
    excluded[1, 1, 1] = True
    blocked = BlockedStarts((2, 2, 2), (4, 4, 4), (4, 4, 4), excluded=excluded)
    blocked.occupy((0, 0, 0), (1, 1, 1))
    assert blocked.mask.sum() == 2 and blocked.mask[0, 0, 0] and blocked.mask[1, 1, 1]
    assert not excluded[0, 0, 0]
    blocked.occupy((20, 0, 0), (3, 3, 3))
    assert blocked.mask.sum() == 2


def test_violates_names_the_first_conflict():
    a = Patch(file="c", start=(0, 0, 0), size=(4, 4, 4))
    others = [
        Patch(file="d", start=(0, 0, 0), size=(4, 4, 4)),
        Patch(file="c", start=(3, 3, 3), size=(2, 2, 2)),
    ]
    assert violates(a, others) == others[1]
    assert violates(a, others, patch_overlap=1 / 64) is None
