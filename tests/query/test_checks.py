"""Checks of what strategy plugins hand back."""

from __future__ import annotations

import numpy as np
import pytest

from nnactive_core.patches.patch import Patch
from nnactive_core.query.checks import (
    QueryCheckError,
    check_composition,
    check_patch_scores,
    check_placement,
    check_pool_order,
    check_pools,
    check_quotas,
    check_voxel_scores,
    who,
)
from nnactive_core.strategies.api import QueryContext, ScoreStrategy


class Named(ScoreStrategy):
    name = "named"
    description = "A name for messages."


STRATEGY = Named()


def ctx(**overrides) -> QueryContext:
    fields = dict(patch_size=(2, 2, 2), query_size=2, patches_per_case=1, seed=0, loop=1, label_values=(0, 1))
    fields.update(overrides)
    return QueryContext(**fields)


def test_who_names_distribution_and_strategy():
    assert who(STRATEGY, "nnactive-strategies-x") == "plugin nnactive-strategies-x: strategy 'named'"
    assert who(STRATEGY) == "strategy 'named'"


def test_voxel_scores_accepts_float_numpy_and_torch():
    torch = pytest.importorskip("torch")
    good = np.zeros((2, 3, 4, 5), dtype=np.float64)
    assert check_voxel_scores(good, (1, -1), (3, 4, 5), STRATEGY).dtype == np.float32
    half = torch.zeros((1, 3, 4, 5), dtype=torch.float16)
    assert check_voxel_scores(half, (-1,), (3, 4, 5), STRATEGY).dtype == np.float32


@pytest.mark.parametrize(
    ("scores", "message"),
    [
        (np.zeros((1, 3, 4, 5)), "shape"),
        (np.zeros((2, 3, 4, 4)), "shape"),
        (np.zeros((2, 3, 4, 5), dtype=np.int32), "dtype"),
        (np.full((2, 3, 4, 5), np.nan), "NaN"),
        (np.full((2, 3, 4, 5), np.inf), "infinite"),
    ],
)
def test_voxel_scores_violations(scores, message):
    with pytest.raises(QueryCheckError, match=message) as error:
        check_voxel_scores(scores, (1, -1), (3, 4, 5), STRATEGY, "dist", case="c.nii.gz")
    assert str(error.value).startswith("plugin dist: strategy 'named':")
    assert "c.nii.gz" in str(error.value)


def test_patch_scores_allow_minus_infinity_but_not_nan():
    values = np.array([[[[-np.inf, 1.0]]]])
    assert check_patch_scores(values, (1, 1, 1, 2), STRATEGY) is not None
    with pytest.raises(QueryCheckError, match="NaN"):
        check_patch_scores(values * np.nan, (1, 1, 1, 2), STRATEGY)
    with pytest.raises(QueryCheckError, match="shape"):
        check_patch_scores(values, (1, 1, 2, 2), STRATEGY)


def test_pools_order_and_quotas():
    assert check_pools([1, 2, -1], STRATEGY) == (1, 2, -1)
    for bad in ([], [1, 1], ["a"]):
        with pytest.raises(QueryCheckError):
            check_pools(bad, STRATEGY)
    assert check_pool_order([2, 1], (1, 2), STRATEGY) == [2, 1]
    with pytest.raises(QueryCheckError, match="ordering"):
        check_pool_order([1], (1, 2), STRATEGY)
    assert check_quotas({1: 2}, (1, 2), STRATEGY) == {1: 2, 2: 0}
    with pytest.raises(QueryCheckError, match="does not list"):
        check_quotas({3: 1}, (1, 2), STRATEGY)
    with pytest.raises(QueryCheckError, match="quota"):
        check_quotas({1: -1}, (1, 2), STRATEGY)


def test_composition():
    assert check_composition([2, 0], 3, 2, STRATEGY).tolist() == [2, 0]
    for rows, message in (([0, 0], "repeated"), ([0], "exactly 2"), ([0, 3], "outside"), ([0.5, 1.0], "1-D")):
        with pytest.raises(QueryCheckError, match=message):
            check_composition(np.array(rows), 3, 2, STRATEGY)


def place(patches, context, free=None):
    return check_placement(
        patches,
        context,
        shape_of=lambda f: (6, 6, 6),
        pool_files={"a.nii.gz", "b.nii.gz"},
        strategy=STRATEGY,
        owner="dist",
        free_mask_of=(lambda f: free) if free is not None else None,
    )


def test_placement_valid_and_partial_overlap_allowed():
    a = Patch(file="a.nii.gz", start=(0, 0, 0), size=(2, 2, 2))
    b = Patch(file="a.nii.gz", start=(1, 0, 0), size=(2, 2, 2))
    assert place([a, Patch(file="b.nii.gz", start=(0, 0, 0), size=(2, 2, 2))], ctx()) is not None
    with pytest.raises(QueryCheckError, match="overlaps"):
        place([a, b], ctx())
    assert place([a, b], ctx(patch_overlap=0.5)) == [a, b]
    with pytest.raises(QueryCheckError, match="overlaps"):
        place([a, b], ctx(patch_overlap=0.49))


def test_placement_free_limit_and_types():
    free = np.zeros((6, 6, 6), dtype=bool)
    free[0] = True
    patches = [
        Patch(file="a.nii.gz", start=(0, 0, 0), size=(2, 2, 2)),
        Patch(file="b.nii.gz", start=(2, 2, 2), size=(2, 2, 2)),
    ]
    assert place(patches, ctx(free_overlap=0.5), free) == patches
    with pytest.raises(QueryCheckError, match="cost-free"):
        place(patches, ctx(free_overlap=0.4), free)
    with pytest.raises(QueryCheckError, match="expected Patch"):
        place([{"file": "a.nii.gz"}, patches[1]], ctx())
