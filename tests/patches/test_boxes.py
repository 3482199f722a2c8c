"""Vectorised box maths agrees with Patch's own intersection arithmetic."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnactive_core.patches.boxes import (
    OccupiedBoxes,
    conflicts,
    intersection_volumes,
    overlap_limit,
    violates,
)
from nnactive_core.patches.patch import Patch

triples = st.tuples(*[st.integers(0, 8)] * 3)
sizes = st.tuples(*[st.integers(1, 5)] * 3)


@settings(max_examples=60, deadline=None)
@given(
    starts=st.lists(triples, min_size=1, max_size=6),
    size=sizes,
    box_start=triples,
    box_size=sizes,
    patch_overlap=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
)
def test_vectorised_matches_patch(starts, size, box_start, box_size, patch_overlap):
    box = Patch(file="c", start=box_start, size=box_size)
    patches = [Patch(file="c", start=s, size=size) for s in starts]
    volumes = intersection_volumes(np.array(starts), size, box_start, box_size)
    assert volumes.tolist() == [p.intersection_volume(box) for p in patches]
    expected = [p.intersection_volume(box) > patch_overlap * p.volume for p in patches]
    assert conflicts(np.array(starts), size, box_start, box_size, patch_overlap).tolist() == expected


def test_zero_overlap_rejects_one_shared_voxel_and_accepts_touching_boxes():
    starts = np.array([[3, 3, 3], [4, 0, 0], [0, 0, 0]])
    hit = conflicts(starts, (2, 2, 2), (4, 4, 4), (2, 2, 2))
    assert hit.tolist() == [True, False, False]


def test_fraction_is_relative_to_the_candidate_volume():
    # 2 of 8 voxels shared: 25 %, allowed at 0.25 and rejected at 0.2
    starts = np.array([[1, 0, 0]])
    assert not conflicts(starts, (2, 2, 2), (0, 0, 0), (2, 2, 1), 0.25)[0]
    assert conflicts(starts, (2, 2, 2), (0, 0, 0), (2, 2, 1), 0.2)[0]
    assert overlap_limit((2, 2, 2), 0.25) == 2.0


def test_occupied_boxes_free_keeps_order_and_checks_every_box():
    occupied = OccupiedBoxes([Patch(file="c", start=(0, 0, 0), size=(2, 2, 2))])
    occupied.add((6, 6, 6), (2, 2, 2))
    starts = np.array([[7, 7, 7], [3, 3, 3], [1, 1, 1], [4, 0, 0]])
    assert occupied.free(starts, (2, 2, 2)).tolist() == [1, 3]
    assert len(occupied) == 2


def test_violates_names_the_first_conflict():
    a = Patch(file="c", start=(0, 0, 0), size=(4, 4, 4))
    others = [
        Patch(file="d", start=(0, 0, 0), size=(4, 4, 4)),
        Patch(file="c", start=(3, 3, 3), size=(2, 2, 2)),
    ]
    assert violates(a, others) == others[1]
    assert violates(a, others, patch_overlap=1 / 64) is None
