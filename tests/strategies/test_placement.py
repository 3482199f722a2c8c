import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnactive_core.patches.patch import Patch
from nnactive_core.strategies.placement import (
    CaseOccupancy,
    CaseRotation,
    PlacementError,
    PlacementSession,
    case_patch_size,
    centred_starts,
    place_uniform,
    trials_for,
    uniform_starts,
)
from nnactive_core.testing.synthetic import SyntheticDataset, make_query_context


class CountingDataset(SyntheticDataset):
    """Counts oracle reads, to check that the cost-free layer is read once per case."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.free_reads: dict[str, int] = {}

    def read_free_labels(self, case):
        self.free_reads[case] = self.free_reads.get(case, 0) + 1
        return super().read_free_labels(case)


def test_case_patch_size_clips_to_small_cases():
    assert case_patch_size((10, 3, 8), (4, 4, 8)) == (4, 3, 8)


def test_uniform_starts_leave_out_the_last_valid_start_as_published():
    # as published: 0 .. D - p - 1 per axis; an axis the patch covers whole starts at 0
    starts = uniform_starts((10, 6, 5), (4, 6, 1), np.random.default_rng(0), 4000)
    assert set(starts[:, 0]) == set(range(6))
    assert set(starts[:, 1]) == {0}
    assert set(starts[:, 2]) == set(range(4))


def test_uniform_starts_with_last_start_cover_every_valid_start():
    starts = uniform_starts((10, 6, 5), (4, 6, 1), np.random.default_rng(0), 4000, last_start=True)
    assert set(starts[:, 0]) == set(range(7))
    assert set(starts[:, 1]) == {0}
    assert set(starts[:, 2]) == set(range(5))


@given(
    voxel=st.tuples(*(st.integers(0, 19),) * 3),
    shape=st.tuples(*(st.integers(1, 20),) * 3),
    patch=st.tuples(*(st.integers(1, 25),) * 3),
)
def test_centred_start_keeps_patch_in_case_and_voxel_in_patch(voxel, shape, patch):
    voxel = tuple(min(v, d - 1) for v, d in zip(voxel, shape, strict=True))
    size = case_patch_size(shape, patch)
    start = centred_starts(np.asarray([voxel]), shape, size)[0]
    for v, a, s, d in zip(voxel, start, size, shape, strict=True):
        assert 0 <= a and a + s <= d
        assert a <= v < a + s


def test_centred_start_is_centred_away_from_the_border():
    assert centred_starts(np.asarray([[10, 10, 10]]), (30, 30, 30), (6, 5, 4)).tolist() == [[7, 8, 8]]


def test_occupancy_rejects_any_shared_voxel_and_accepts_touching_boxes():
    occupancy = CaseOccupancy(shape=(20, 20, 20), size=(4, 4, 4))
    occupancy.add_box((4, 4, 4), (4, 4, 4))
    starts = np.asarray([[7, 7, 7], [8, 4, 4], [0, 0, 0], [4, 4, 4]])
    assert occupancy.overlap_ok(starts).tolist() == [False, True, True, False]
    assert occupancy.first_acceptable(starts) == 1


def test_occupancy_allows_overlap_up_to_patch_overlap_of_own_volume():
    occupancy = CaseOccupancy(shape=(20, 20, 20), size=(4, 4, 4), patch_overlap=0.5)
    occupancy.add((0, 0, 0))
    # shares 2x4x4 = half of the box; 3x4x4 is three quarters
    assert occupancy.overlap_ok(np.asarray([[2, 0, 0], [1, 0, 0]])).tolist() == [True, False]


def test_occupancy_limits_the_free_fraction():
    free = np.zeros((10, 10, 10), dtype=bool)
    free[:, :, :5] = True
    occupancy = CaseOccupancy(shape=free.shape, size=(2, 2, 4), free_overlap=0.5, free=free)
    # x 0..3 is all free, x 3..6 half free, x 6..9 nothing free
    assert occupancy.first_acceptable(np.asarray([[0, 0, 0], [0, 0, 3], [0, 0, 6]])) == 1


def test_rotation_visits_a_seeded_shuffle_cyclically_and_drops_cases():
    cases = [f"c{i}" for i in range(5)]
    rotation = CaseRotation(cases, np.random.default_rng(3))
    first = [rotation.take() for _ in range(5)]
    assert sorted(first) == cases
    assert [rotation.take() for _ in range(5)] == first
    again = CaseRotation(cases, np.random.default_rng(3))
    assert [again.take() for _ in range(5)] == first
    rotation.take()
    rotation.drop(first[0])
    rotation.drop(first[3])
    assert [rotation.take() for _ in range(3)] == [first[1], first[2], first[4]]
    for case in (first[1], first[2], first[4]):
        rotation.drop(case)
    with pytest.raises(PlacementError):
        rotation.take()


def test_trials_for_starting_budget():
    dataset = SyntheticDataset.generate(cases=1)
    assert trials_for(make_query_context(dataset, loop=0)) > trials_for(make_query_context(dataset, loop=3))


def test_session_respects_annotated_patches_and_reads_free_layer_once():
    maps = {"a": np.zeros((8, 8, 8), np.uint8), "b": np.zeros((8, 8, 8), np.uint8)}
    free = np.full((8, 8, 8), 255, np.uint8)
    free[:4] = 0
    dataset = CountingDataset(maps, labels={"background": 0, "x": 1}, free_labels={"a": free})
    annotated = (Patch(file="a.nii.gz", start=(4, 4, 4), size=(4, 4, 4)),)
    ctx = make_query_context(dataset, patch_size=4, free_overlap=0.0, annotated=annotated)
    session = PlacementSession(dataset, ctx)
    occupancy = session.occupancy("a")
    assert len(occupancy) == 1
    assert occupancy.first_acceptable(np.asarray([[0, 0, 0], [4, 4, 4], [4, 0, 0]])) == 2
    patch = session.accept("a", (4, 0, 0))
    assert patch == Patch(file="a.nii.gz", start=(4, 0, 0), size=(4, 4, 4))
    assert session.placed == [patch]
    assert session.remaining == ctx.query_size - 1
    session.occupancy("a")
    session.occupancy("b")
    assert dataset.free_reads == {"a": 1, "b": 1}


def test_session_ignores_free_layer_when_free_overlap_is_one():
    maps = {"a": np.zeros((8, 8, 8), np.uint8)}
    dataset = CountingDataset(maps, free_labels={"a": np.zeros((8, 8, 8), np.uint8)})
    PlacementSession(dataset, make_query_context(dataset, free_overlap=1.0)).occupancy("a")
    assert dataset.free_reads == {}


def test_free_layer_of_wrong_shape_is_an_error_naming_the_case():
    dataset = SyntheticDataset({"a": np.zeros((8, 8, 8), np.uint8)}, free_labels={"a": np.zeros((8, 8, 7))})
    session = PlacementSession(dataset, make_query_context(dataset, free_overlap=0.5))
    with pytest.raises(PlacementError, match="'a'.*cost-free layer"):
        session.occupancy("a")


def test_search_gives_up_after_the_trials_and_when_the_proposer_has_nothing():
    dataset = SyntheticDataset({"a": np.zeros((4, 4, 4), np.uint8)})
    session = PlacementSession(dataset, make_query_context(dataset, patch_size=4))
    calls = []

    def propose(n):
        calls.append(n)
        return np.zeros((n, 3), dtype=np.int64)

    assert session.search("a", propose, trials=5) is not None
    assert session.search("a", propose, trials=50) is None
    assert sum(calls[1:]) == 50
    assert session.search("a", lambda n: None, trials=50) is None


@pytest.mark.timeout(20)
def test_place_uniform_fails_naming_how_many_were_placed():
    dataset = SyntheticDataset({f"c{i}": np.zeros((8, 8, 8), np.uint8) for i in range(3)})
    ctx = make_query_context(dataset, patch_size=8, query_size=4)
    session = PlacementSession(dataset, ctx)
    with pytest.raises(PlacementError, match="placed only 3 of 4 patches"):
        place_uniform(session, 4, np.random.default_rng(0), np.random.default_rng(1), trials=50, who="random")
