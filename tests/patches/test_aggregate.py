"""Box-filter aggregation: the reference cases of the established code and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnactive_core.patches.aggregate import box_means, box_sums, grid_shape, grid_starts, kernel_size


def brute_force_means(volume, patch_size, stride):
    kernel = kernel_size(volume.shape, patch_size)
    grid = grid_shape(volume.shape, patch_size, stride)
    out = np.empty(grid)
    for index in np.ndindex(*grid):
        z, y, x = (i * s for i, s in zip(index, stride, strict=True))
        out[index] = volume[z : z + kernel[0], y : y + kernel[1], x : x + kernel[2]].mean()
    return out


@pytest.mark.parametrize("stride", [(1, 1, 1), (1, 2, 2), (1, 4, 4)])
def test_two_dimensional_hot_spot_maximum_back_maps_to_its_start(stride):
    image = np.zeros((1, 64, 64), dtype=np.float32)
    image[0, 4:6, 8:10] = 1.0
    means = box_means(image, (1, 2, 2), stride)
    assert means.max() == pytest.approx(1.0, abs=1e-5)
    start = grid_starts(np.array([np.argmax(means)]), means.shape, stride)[0]
    assert tuple(start) == (0, 4, 8)


def test_zeros_give_zeros_on_the_valid_grid():
    means = box_means(np.zeros((64, 64, 64), dtype=np.float32), (10, 10, 10))
    assert means.shape == (55, 55, 55)
    assert not means.any()


def test_ones_give_ones():
    means = box_means(np.ones((64, 64, 64), dtype=np.float32), (10, 10, 10))
    assert means.shape == (55, 55, 55)
    np.testing.assert_allclose(means, 1.0, atol=1e-5)


def test_block_maximum_at_its_start():
    volume = np.zeros((64, 64, 64), dtype=np.float32)
    volume[5:15, 10:20, 3:13] = 1.0
    means = box_means(volume, (10, 10, 10))
    assert means.max() == pytest.approx(1.0, abs=1e-5)
    assert np.unravel_index(np.argmax(means), means.shape) == (5, 10, 3)


@pytest.mark.parametrize(("stride", "count"), [((1, 1, 1), 729), ((1, 2, 1), 405), ((2, 4, 5), 30)])
def test_candidate_counts_of_the_reference_strides(stride, count):
    means = box_means(np.random.default_rng(0).random((10, 10, 10), dtype=np.float32), (2, 2, 2), stride)
    assert means.size == count == int(np.prod(grid_shape((10, 10, 10), (2, 2, 2), stride)))


def test_patch_larger_than_case_shrinks_to_the_case():
    volume = np.random.default_rng(1).random((4, 9, 3), dtype=np.float32)
    assert kernel_size(volume.shape, (8, 8, 8)) == (4, 8, 3)
    means = box_means(volume, (8, 8, 8), (1, 1, 1))
    assert means.shape == (1, 2, 1)
    assert means[0, 1, 0] == pytest.approx(volume[:, 1:9, :].mean(), rel=1e-6)


def test_far_border_start_is_on_the_grid_only_when_the_stride_reaches_it():
    # stride 1 reaches the flush start D - k; stride 3 with D - k = 7 stops at 6 (documented)
    assert grid_shape((10, 10, 10), (3, 3, 3), (1, 1, 1)) == (8, 8, 8)
    assert grid_shape((10, 10, 10), (3, 3, 3), (3, 3, 3)) == (3, 3, 3)
    volume = np.zeros((10, 10, 10), dtype=np.float32)
    volume[7:, 7:, 7:] = 1.0
    means = box_means(volume, (3, 3, 3))
    assert np.unravel_index(np.argmax(means), means.shape) == (7, 7, 7)


def test_channels_and_torch_input():
    torch = pytest.importorskip("torch")
    volumes = np.random.default_rng(2).random((3, 6, 7, 8), dtype=np.float32)
    expected = np.stack([brute_force_means(v, (2, 3, 4), (1, 2, 1)) for v in volumes])
    np.testing.assert_allclose(box_means(volumes, (2, 3, 4), (1, 2, 1)), expected, rtol=1e-5)
    np.testing.assert_allclose(
        box_means(torch.from_numpy(volumes), (2, 3, 4), (1, 2, 1)), expected, rtol=1e-5
    )


def test_sums_of_a_mask_are_exact_counts():
    mask = np.random.default_rng(3).random((9, 8, 7)) < 0.3
    sums = box_sums(mask, (3, 3, 3), (2, 1, 2))
    assert sums.dtype == np.float64
    assert sums.shape == (4, 6, 3)
    assert sums[1, 2, 2] == mask[2:5, 2:5, 4:7].sum()


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="stride"):
        grid_shape((4, 4, 4), (2, 2, 2), (0, 1, 1))
    with pytest.raises(ValueError, match="Z x Y x X"):
        box_means(np.zeros((2, 2)), (1, 1, 1))


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(*[st.integers(1, 9)] * 3),
    patch=st.tuples(*[st.integers(1, 11)] * 3),
    stride=st.tuples(*[st.integers(1, 4)] * 3),
    seed=st.integers(0, 2**16),
)
def test_matches_brute_force_means(shape, patch, stride, seed):
    volume = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    np.testing.assert_allclose(
        box_means(volume, patch, stride), brute_force_means(volume, patch, stride), atol=1e-5
    )


def test_channels_on_threads_equal_one_thread_and_reuse_the_workspace_lanes():
    from nnactive_core.patches.aggregate import BoxWorkspace

    volumes = np.random.default_rng(4).random((5, 11, 9, 13)).astype(np.float32)
    one = box_means(volumes, (4, 3, 5), (1, 2, 1), threads=1)
    workspace = BoxWorkspace()
    for _ in range(2):
        np.testing.assert_array_equal(box_means(volumes, (4, 3, 5), (1, 2, 1), workspace, threads=3), one)
    assert len(workspace.lanes(3)) == 3 and workspace.lanes(3)[1] is workspace.lanes(2)[1]


def test_small_blocks_and_threads_equal_one_pass(monkeypatch):
    from nnactive_core.patches import aggregate

    volumes = np.random.default_rng(5).random((3, 17, 14, 12)).astype(np.float32)
    one = box_means(volumes, (5, 4, 3), (2, 1, 1), threads=1)
    sums = box_sums(volumes[1], (5, 4, 3), (2, 1, 1)).copy()
    monkeypatch.setattr(aggregate, "_BLOCK_ELEMENTS", 40)
    np.testing.assert_array_equal(box_sums(volumes[1], (5, 4, 3), (2, 1, 1)), sums)
    for threads in (2, 3, 7):
        np.testing.assert_array_equal(box_means(volumes, (5, 4, 3), (2, 1, 1), threads=threads), one)


def test_a_failing_thread_raises_in_the_caller_without_deadlock(monkeypatch):
    import threading

    from nnactive_core.patches import aggregate

    original = aggregate._window_sums

    def failing(*args):
        if threading.current_thread().name == "nnactive-box-1":
            raise RuntimeError("lane 1 failed")
        return original(*args)

    monkeypatch.setattr(aggregate, "_window_sums", failing)
    volumes = np.random.default_rng(6).random((3, 10, 10, 10)).astype(np.float32)
    with pytest.raises(RuntimeError, match="lane 1 failed"):
        box_means(volumes, (4, 4, 4), threads=2)


def test_no_channels_give_an_empty_grid():
    assert box_means(np.zeros((0, 6, 6, 6), np.float32), (4, 4, 4)).shape == (0, 3, 3, 3)
