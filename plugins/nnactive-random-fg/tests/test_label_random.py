from collections import Counter

import attrs
import numpy as np
import pytest
from scipy import ndimage

from nnactive_core.patches.patch import Patch
from nnactive_core.query.engine import run_placement_query
from nnactive_core.strategies.placement import PlacementError, PlacementSession
from nnactive_core.testing.synthetic import make_query_context
from nnactive_random_fg.label_random import RandomLabel
from nnactive_random_fg.plugin import RANDOM_LABEL, RANDOM_LABEL2
from nnactive_random_fg.record import ALL, BORDER, SEG


def _draws(strategy, dataset, **overrides):
    ctx = make_query_context(dataset, **overrides)
    draws = strategy.draw(PlacementSession(dataset, ctx), ctx.query_size, (strategy.name,))
    # what place() returns passes the core's checks
    assert run_placement_query(strategy, dataset, ctx).patches == [d.patch for d in draws]
    return draws


def _draws_unchecked(strategy, dataset, **overrides):
    """The draws without the core's output checks, which cost O(n^2) on the large queries here."""
    ctx = make_query_context(dataset, **overrides)
    return strategy.draw(PlacementSession(dataset, ctx), ctx.query_size, (strategy.name,))


def _centre(patch: Patch) -> tuple[int, int, int]:
    return tuple(a + s // 2 for a, s in zip(patch.start, patch.size, strict=True))


@pytest.mark.parametrize(
    "strategy, seg, border",
    [(RANDOM_LABEL, 1 / 3, 1 / 3), (RANDOM_LABEL2, 1 / 6, 1 / 6)],
    ids=["random-label", "random-label2"],
)
def test_share_of_foreground_centred_patches(blob_pool, strategy, seg, border):
    # 2^3 patches never fill a label here, so no visit fails and the share is the nominal one
    dataset = blob_pool(cases=30)
    draws = _draws(strategy, dataset, query_size=300, patch_size=2, seed=11)
    assert len(draws) == 300
    modes = Counter(d.mode for d in draws)
    n = len(draws)
    # 3 standard deviations of a binomial share of 300 draws is below 0.082
    assert abs((modes[SEG] + modes[BORDER]) / n - (seg + border)) < 0.082
    assert abs(modes[SEG] / n - seg) < 0.082
    assert abs(modes[BORDER] / n - border) < 0.082

    structure = ndimage.generate_binary_structure(3, 1)
    for draw in draws:
        truth = dataset.read_labels(draw.case)
        centre = _centre(draw.patch)
        if draw.mode == SEG:
            assert truth[centre] == draw.label
        elif draw.mode == BORDER:
            mask = truth == draw.label
            assert mask[centre] and not ndimage.binary_erosion(mask, structure=structure)[centre]
        else:
            assert draw.mode == ALL and draw.label is None
    labels_drawn = Counter(d.label for d in draws if d.mode != ALL)
    assert set(labels_drawn) == {1, 2}


def test_centred_share_shows_in_the_ground_truth(blob_pool):
    # independent of the recorded modes: foreground under the patch centres, vs uniform placement
    dataset = blob_pool(cases=30)
    shares = {}
    for strategy in (RANDOM_LABEL, RANDOM_LABEL2):
        draws = _draws(strategy, dataset, query_size=300, patch_size=2, seed=2)
        shares[strategy.name] = np.mean([dataset.read_labels(d.case)[_centre(d.patch)] > 0 for d in draws])
    foreground = np.mean([(dataset.read_labels(c) > 0).mean() for c in dataset.pool_cases()])
    assert shares["random-label"] == pytest.approx(2 / 3 + foreground / 3, abs=0.085)
    assert shares["random-label2"] == pytest.approx(1 / 3 + 2 * foreground / 3, abs=0.085)


def test_same_seed_same_patches(blob_pool):
    dataset = blob_pool(cases=8)
    first = RANDOM_LABEL.place(dataset, make_query_context(dataset, query_size=20, seed=4))
    assert RANDOM_LABEL.place(dataset, make_query_context(dataset, query_size=20, seed=4)) == first
    assert RANDOM_LABEL.place(dataset, make_query_context(dataset, query_size=20, seed=5)) != first


def test_no_overlap_with_each_other_or_annotated(blob_pool):
    dataset = blob_pool(cases=4, shape=(20, 20, 20))
    annotated = tuple(Patch(file=f"case_00{i}.nii.gz", start=(6, 6, 6), size=(8, 8, 8)) for i in range(4))
    patches = RANDOM_LABEL.place(dataset, make_query_context(dataset, query_size=30, annotated=annotated))
    for i, patch in enumerate(patches):
        assert not any(patch.intersects(other) for other in patches[i + 1 :] + list(annotated))


@pytest.mark.timeout(60)
def test_case_without_foreground_and_rare_class_complete(blob_pool):
    dataset = blob_pool(cases=6, empty=(0, 1), lesion_cases=(3,))
    draws = _draws(RANDOM_LABEL, dataset, query_size=60, patch_size=4, seed=0)
    assert len(draws) == 60
    for case in ("case_000", "case_001"):
        assert {d.mode for d in draws if d.case == case} == {ALL}
    # below the nominal 2/3 of 60: a foreground mode drawn on a visit to an empty case wastes the visit
    assert 20 < sum(d.mode != ALL for d in draws) < 40
    dataset.reads.clear()
    RANDOM_LABEL.place(dataset, make_query_context(dataset, query_size=60, patch_size=4))
    assert dataset.reads == {case: 1 for case in dataset.pool_cases()}


@pytest.mark.timeout(60)
def test_pool_without_any_foreground_falls_back_to_uniform(blob_pool, caplog):
    dataset = blob_pool(cases=3, empty=(0, 1, 2))
    with caplog.at_level("INFO", logger="nnactive_random_fg"):
        draws = _draws(RANDOM_LABEL, dataset, query_size=12, patch_size=4)
    assert [d.mode for d in draws] == [ALL] * 12
    assert "visits of modes no case can take" in caplog.text


@pytest.mark.timeout(60)
def test_saturated_foreground_falls_back_instead_of_looping(counting_dataset):
    # one foreground voxel per case: only one patch per case can be centred on it
    maps = {}
    for i in range(4):
        labels = np.zeros((12, 12, 12), np.uint8)
        labels[6, 6, 6] = 1
        maps[f"c{i}"] = labels
    dataset = counting_dataset(maps)
    strategy = RandomLabel(name="fg-only", description="x", mode_weights=(0, 1, 0), trials_per_case=50)
    draws = _draws(strategy, dataset, query_size=12, patch_size=4, loop=1)
    modes = Counter(d.mode for d in draws)
    assert modes == {SEG: 4, ALL: 8}


def _two_case_pool(counting_dataset):
    """Case "a" with a large organ (a ball of radius 10), case "b" without foreground: a foreground mode
    fails only on b."""
    grid = np.indices((32, 32, 32))
    organ = (((grid - 16) ** 2).sum(axis=0) <= 100).astype(np.uint8)
    return counting_dataset({"a": organ, "b": np.zeros((32, 32, 32), np.uint8)})


# The mode is drawn on every case visit, as in the established code. With cases a (foreground) and b (none)
# visited in turn, a visit to b places a patch only when it draws "all" (probability p), else the
# patch goes to a. From "b is next": with probability p, b then a take one patch each, otherwise a
# takes one; so a takes 1 / (1 + p) of the patches, each foreground-centred with probability 1 - p,
# and the foreground share is (1 - p) / (1 + p): 1/2 for random-label (p = 1/3), 1/5 for
# random-label2 (p = 2/3). Drawn once per patch (mode_per_patch), the share is the nominal 1 - p.
@pytest.mark.parametrize(
    "strategy, all_share",
    [(RANDOM_LABEL, 1 / 3), (RANDOM_LABEL2, 2 / 3)],
    ids=["random-label", "random-label2"],
)
def test_mode_is_redrawn_on_every_case_visit(counting_dataset, strategy, all_share):
    dataset = _two_case_pool(counting_dataset)
    options = dict(query_size=900, patch_size=1, seed=3, loop=1)
    per_visit = _draws_unchecked(strategy, dataset, **options)
    per_patch = _draws_unchecked(attrs.evolve(strategy, mode_per_patch=True), dataset, **options)
    for draws, foreground_share in (
        (per_visit, (1 - all_share) / (1 + all_share)),
        (per_patch, 1 - all_share),
    ):
        assert np.mean([d.case == "a" for d in draws]) == pytest.approx(1 / (1 + all_share), abs=0.05)
        assert np.mean([d.mode != ALL for d in draws]) == pytest.approx(foreground_share, abs=0.05)
        assert all(d.mode == ALL for d in draws if d.case == "b")


def test_skipped_visits_keep_the_per_visit_distribution(blob_pool):
    # no case has foreground: a visit places a patch only with "all" (p = 1/3), so between two patches
    # the rotation of 3 cases moves on 1 + K cases, K ~ Geometric(1/3) - 1 failed visits:
    # P(K mod 3 = j) = (1/3) (2/3)^j / (1 - (2/3)^3) = 9/19, 6/19, 4/19 (j = 2: the same case again).
    # The rotation's direction through the sorted names is unknown, so the two moves are compared sorted.
    dataset = blob_pool(cases=3, shape=(16, 16, 16), empty=(0, 1, 2))
    draws = _draws_unchecked(RANDOM_LABEL, dataset, query_size=1200, patch_size=1, seed=8, loop=1)
    order = sorted(dataset.pool_cases())
    steps = np.diff([order.index(d.case) for d in draws]) % 3
    shares = np.bincount(steps, minlength=3) / len(steps)
    assert shares[0] == pytest.approx(4 / 19, abs=0.04)
    np.testing.assert_allclose(sorted(shares[1:]), [6 / 19, 9 / 19], atol=0.045)


@pytest.mark.timeout(60)
def test_full_pool_fails_naming_how_many_were_placed(blob_pool):
    dataset = blob_pool(cases=2, shape=(20, 20, 20))
    with pytest.raises(PlacementError, match="random-label: placed only 2 of 3 patches"):
        RANDOM_LABEL.place(dataset, make_query_context(dataset, query_size=3, patch_size=20))


def test_mode_weights_are_validated():
    with pytest.raises(ValueError, match="mode_weights"):
        RandomLabel(name="x", description="x", mode_weights=(1, -1, 1))
    assert RandomLabel(name="x", description="x", mode_weights=(4, 1, 1)).mode_weights == (
        4 / 6,
        1 / 6,
        1 / 6,
    )
