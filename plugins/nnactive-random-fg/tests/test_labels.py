import numpy as np
import pytest
from scipy import ndimage

from nnactive_random_fg.labels import CaseLabels, LabelStore


def _random_labels(seed=0, shape=(12, 10, 9)) -> np.ndarray:
    # smoothed noise: blobs that touch the case border too
    noise = ndimage.uniform_filter(np.random.default_rng(seed).normal(size=shape), 3)
    return np.digitize(noise, [-0.1, 0.15]).astype(np.int32)


def test_compact_dtype_and_counts():
    labels = CaseLabels("a", _random_labels())
    assert labels.labels.dtype == np.uint8
    assert labels.counts.sum() == labels.labels.size
    assert labels.present([0, 1, 2, 7]) == tuple(v for v in (0, 1, 2) if (labels.labels == v).any())
    assert labels.count(7) == 0
    assert CaseLabels("b", np.full((2, 2, 2), 300)).labels.dtype == np.uint16
    assert CaseLabels("c", np.full((2, 2, 2), 2.0)).labels.dtype == np.uint8


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full((2, 2, 2), 0.5), "non-integer"),
        (np.full((2, 2, 2), -1), "negative"),
        (np.zeros((2, 2)), "3D"),
    ],
)
def test_bad_ground_truth_names_the_case(bad, message):
    with pytest.raises(ValueError, match=f"'case_x'.*{message}"):
        CaseLabels("case_x", bad)


def test_locations_and_border_match_a_whole_case_erosion():
    raw = _random_labels(seed=3)
    labels = CaseLabels("a", raw)
    structure = ndimage.generate_binary_structure(3, 1)
    for value in (0, 1, 2):
        mask = raw == value
        assert np.array_equal(labels.locations(value), np.flatnonzero(mask))
        border = mask & ~ndimage.binary_erosion(mask, structure=structure, border_value=0)
        assert np.array_equal(np.sort(labels.border(value)), np.flatnonzero(border))
    assert len(labels.border(9)) == 0


def test_border_is_computed_once_per_label():
    labels = CaseLabels("a", _random_labels())
    assert labels.border(1) is labels.border(1)
    assert labels.locations(2) is labels.locations(2)


@pytest.mark.parametrize("value", [0, 1])
def test_voxel_draws_are_uniform_over_the_label(value):
    # label 1: 4 voxels (listed); label 0: 60 of 64 voxels (dense: drawn by rejection)
    raw = np.zeros((4, 4, 4), np.uint8)
    raw[1, 2, 0:4] = 1
    labels = CaseLabels("a", raw)
    voxels = labels.draw_voxels(value, np.random.default_rng(0), 60000)
    assert (raw[tuple(voxels.T)] == value).all()
    counts = np.bincount(np.ravel_multi_index(tuple(voxels.T), raw.shape), minlength=raw.size)
    hits = counts[raw.ravel() == value]
    assert len(hits) == labels.count(value)
    expected = len(voxels) / len(hits)
    assert np.abs(hits - expected).max() < 0.15 * expected
    with pytest.raises(ValueError, match="no voxel of label 5"):
        labels.draw_voxels(5, np.random.default_rng(0), 1)


def test_border_draws_stay_on_the_border():
    raw = _random_labels(seed=1)
    labels = CaseLabels("a", raw)
    voxels = labels.draw_border_voxels(1, np.random.default_rng(0), 500)
    flat = np.ravel_multi_index(tuple(voxels.T), raw.shape)
    assert set(flat) <= set(labels.border(1).tolist())


def test_store_reads_each_case_once_and_evicts_over_budget(counting_dataset):
    maps = {f"c{i}": np.zeros((8, 8, 8), np.uint8) for i in range(3)}
    dataset = counting_dataset(maps)
    store = LabelStore(dataset)
    for _ in range(3):
        for case in maps:
            store.get(case)
    assert dataset.reads == {case: 1 for case in maps}
    tight = LabelStore(dataset, max_bytes=1)
    for case in ("c0", "c1", "c0"):
        tight.get(case)
    assert tight.reads == 3


def test_store_checks_the_shape_against_the_dataset(counting_dataset):
    dataset = counting_dataset({"c0": np.zeros((8, 8, 8), np.uint8)})
    dataset.shape = lambda case: (9, 9, 9)
    with pytest.raises(ValueError, match="'c0'.*shape"):
        LabelStore(dataset).get("c0")
