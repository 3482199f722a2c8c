"""Greedy best-first selection: the slab reference case and equality with a brute-force greedy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnactive_core.patches.aggregate import box_means, grid_shape, kernel_size
from nnactive_core.patches.boxes import BlockedStarts
from nnactive_core.patches.patch import Patch
from nnactive_core.patches.select import ranked_chunks, select_greedy


def blocked(grid, stride, kernel, annotated=(), patch_overlap=0.0, allowed=None) -> BlockedStarts:
    starts = BlockedStarts(
        grid, stride, kernel, patch_overlap, excluded=None if allowed is None else ~allowed
    )
    starts.occupy_patches(annotated)
    return starts


def slab_scores() -> np.ndarray:
    """110 x 10 x 10: eleven slabs of 10 along z with values 1.0, 0.9, ..., 0.0."""
    values = np.repeat(np.linspace(1.0, 0.0, 11), 10).astype(np.float32)
    return np.broadcast_to(values[:, None, None], (110, 10, 10)).copy()


def select_slabs(annotated=()):
    means = box_means(slab_scores(), (10, 10, 10))
    assert means.shape == (101, 1, 1)
    starts, scores = select_greedy(
        means, quota=3, blocked=blocked(means.shape, (1, 1, 1), (10, 10, 10), annotated)
    )
    return [Patch(file="test", start=s, size=(10, 10, 10)) for s in starts], scores


def test_slabs_without_prior_patches():
    patches, scores = select_slabs()
    assert [p.start for p in patches] == [(0, 0, 0), (10, 0, 0), (20, 0, 0)]
    np.testing.assert_allclose(scores, [1.0, 0.9, 0.8], atol=2e-5)
    assert all(p.size == (10, 10, 10) and p.file == "test" for p in patches)


def test_slabs_with_a_prior_patch():
    patches, scores = select_slabs([Patch(file="test", start=(0, 0, 0), size=(10, 10, 10))])
    assert [p.start for p in patches] == [(10, 0, 0), (20, 0, 0), (30, 0, 0)]
    np.testing.assert_allclose(scores, [0.9, 0.8, 0.7], atol=2e-5)


def test_quota_zero_and_exhausted_grid():
    means = box_means(slab_scores(), (10, 10, 10))
    starts, _ = select_greedy(means, quota=0, blocked=blocked(means.shape, (1, 1, 1), (10,) * 3))
    assert starts.shape == (0, 3)
    starts, _ = select_greedy(means, quota=50, blocked=blocked(means.shape, (1, 1, 1), (10,) * 3))
    assert len(starts) == 11


def test_grid_mismatch_is_an_error():
    with pytest.raises(ValueError, match="does not match"):
        select_greedy(np.zeros((2, 2, 2)), quota=1, blocked=BlockedStarts((2, 2, 3), (1, 1, 1), (1, 1, 1)))


def test_selection_blocks_its_picks_so_pools_never_overlap():
    means = box_means(slab_scores(), (10, 10, 10))
    shared = blocked(means.shape, (1, 1, 1), (10,) * 3)
    first, _ = select_greedy(means, quota=2, blocked=shared)
    second, _ = select_greedy(means, quota=2, blocked=shared)
    assert first[:, 0].tolist() == [0, 10]
    assert second[:, 0].tolist() == [20, 30]


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.sampled_from([0.0, 1.0, 2.0, -np.inf, 5.5]), min_size=1, max_size=80),
    first=st.integers(1, 7),
    growth=st.integers(2, 8),
    seed=st.integers(0, 100),
    exclude=st.booleans(),
)
def test_ranked_chunks_concatenate_to_a_stable_descending_sort(values, first, growth, seed, exclude):
    values = np.array(values)
    excluded = np.random.default_rng(seed).random(len(values)) < 0.3 if exclude else None
    chunks = list(ranked_chunks(values, first, excluded=excluded, growth=growth))
    for earlier, later in zip(chunks, chunks[1:], strict=False):
        assert values[earlier].min() > values[later].max()
    ranked = np.concatenate([c[np.argsort(-values[c], kind="stable")] for c in chunks]) if chunks else []
    expected = np.argsort(-values, kind="stable")
    if excluded is not None:
        expected = expected[~excluded[expected]]
    assert list(ranked) == expected.tolist()


def brute_force_greedy(scores, stride, kernel, quota, annotated, patch_overlap, allowed):
    """The established algorithm, literally: the whole grid sorted, walked, each box checked."""
    accepted: list[Patch] = []
    for index in np.argsort(-scores.reshape(-1), kind="stable"):
        if len(accepted) == quota:
            break
        if allowed is not None and not allowed.reshape(-1)[index]:
            continue
        start = np.array(np.unravel_index(index, scores.shape)) * np.array(stride)
        patch = Patch(file="c", start=start, size=kernel)
        if any(patch.intersection_volume(o) > patch_overlap * patch.volume for o in [*annotated, *accepted]):
            continue
        accepted.append(patch)
    return [p.start for p in accepted]


@settings(max_examples=60, deadline=None)
@given(
    shape=st.tuples(*[st.integers(2, 9)] * 3),
    patch=st.tuples(*[st.integers(1, 4)] * 3),
    stride=st.tuples(*[st.integers(1, 3)] * 3),
    quota=st.integers(1, 6),
    patch_overlap=st.sampled_from([0.0, 0.0, 0.25, 0.5]),
    n_annotated=st.integers(0, 3),
    use_allowed=st.booleans(),
    first=st.integers(1, 16),
    seed=st.integers(0, 2**16),
)
def test_equals_brute_force_greedy(
    shape, patch, stride, quota, patch_overlap, n_annotated, use_allowed, first, seed
):
    rng = np.random.default_rng(seed)
    grid = grid_shape(shape, patch, stride)
    kernel = kernel_size(shape, patch)
    # few distinct values, so ties are common
    scores = rng.integers(0, 4, size=grid).astype(np.float32)
    annotated = []
    for _ in range(n_annotated):
        size = rng.integers(1, np.array(shape) + 1)
        start = rng.integers(0, np.array(shape) - size + 1)
        annotated.append(Patch(file="c", start=start, size=size))
    allowed = rng.random(grid) < 0.7 if use_allowed else None
    starts, found = select_greedy(
        scores,
        quota=quota,
        blocked=blocked(grid, stride, kernel, annotated, patch_overlap, allowed),
        first_chunk=first,
    )
    chosen = [Patch(file="c", start=s, size=kernel) for s in starts]
    assert [p.start for p in chosen] == brute_force_greedy(
        scores, stride, kernel, quota, annotated, patch_overlap, allowed
    )
    for i, p in enumerate(chosen):
        assert p.fits_in(shape)
        assert all(p.intersection_volume(o) <= patch_overlap * p.volume for o in [*annotated, *chosen[:i]])
    flat_index = [np.ravel_multi_index(tuple(np.array(p.start) // stride), grid) for p in chosen]
    np.testing.assert_array_equal(found, scores.reshape(-1)[flat_index])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), quota=st.integers(1, 8))
def test_zero_overlap_selection_never_intersects(seed, quota):
    rng = np.random.default_rng(seed)
    volume = rng.random((12, 11, 10), dtype=np.float32)
    annotated = [Patch(file="c", start=(2, 3, 1), size=(5, 5, 5))]
    means = box_means(volume, (4, 3, 5), (1, 2, 1))
    starts, _ = select_greedy(
        means,
        quota=quota,
        blocked=blocked(means.shape, (1, 2, 1), (4, 3, 5), annotated),
        first_chunk=4,
    )
    chosen = [Patch(file="c", start=s, size=(4, 3, 5)) for s in starts]
    for i, p in enumerate(chosen):
        assert p.fits_in(volume.shape)
        assert not any(p.intersects(o) for o in [*annotated, *chosen[:i]])


def test_allowed_mask_excludes_starts():
    means = box_means(slab_scores(), (10, 10, 10))
    allowed = np.ones(means.shape, dtype=bool)
    allowed[0] = False
    starts, _ = select_greedy(
        means, quota=1, blocked=blocked(means.shape, (1, 1, 1), (10,) * 3, allowed=allowed)
    )
    assert starts[0].tolist() == [1, 0, 0]


@pytest.mark.parametrize("first", [1, 2048])
def test_band_size_does_not_change_the_result(first):
    means = box_means(np.random.default_rng(5).random((20, 20, 20), dtype=np.float32), (4, 4, 4))
    starts, _ = select_greedy(
        means, quota=10, blocked=blocked(means.shape, (1, 1, 1), (4,) * 3), first_chunk=first
    )
    reference = brute_force_greedy(means, (1, 1, 1), (4, 4, 4), 10, [], 0.0, None)
    assert [tuple(s) for s in starts.tolist()] == reference
