from collections import Counter, defaultdict

import numpy as np
import pytest

from nnactive_core.patches.patch import Patch
from nnactive_core.plugins import load_registry
from nnactive_core.query.engine import run_placement_query
from nnactive_core.strategies.placement import PlacementError
from nnactive_core.testing.synthetic import make_query_context
from nnactive_random_fg.plugin import STRATEGIES
from nnactive_random_fg.record import ALL, COVER

ALL_CLASSES = [s for s in STRATEGIES if s.name.endswith("-all-classes")]
IDS = [s.name for s in ALL_CLASSES]


@pytest.mark.parametrize("strategy", ALL_CLASSES, ids=IDS)
def test_covers_every_label_in_two_cases_then_fills_with_the_base(blob_pool, strategy):
    dataset = blob_pool(cases=12, lesion_cases=(1, 5, 9))
    ctx = make_query_context(dataset, query_size=24, patch_size=4, loop=0)
    draws = strategy.draw(dataset, ctx)
    assert [d.patch for d in draws] == run_placement_query(strategy, dataset, ctx).patches
    assert len(draws) == 24
    assert [d.mode for d in draws[:6]] == [COVER] * 6
    assert COVER not in {d.mode for d in draws[6:]}
    covered = defaultdict(set)
    for draw in draws:
        truth = dataset.read_labels(draw.case)[draw.patch.slices]
        for label in np.unique(truth):
            covered[int(label)].add(draw.case)
    assert all(len(covered[label]) >= 2 for label in (0, 1, 2))
    fill_modes = Counter(d.mode for d in draws[6:])
    if strategy.name == "random-all-classes":
        assert set(fill_modes) == {ALL}
    else:
        assert len(fill_modes) > 1


@pytest.mark.parametrize("strategy", ALL_CLASSES, ids=IDS)
def test_respects_annotated_and_is_seeded(blob_pool, strategy):
    dataset = blob_pool(cases=6, shape=(20, 20, 20))
    annotated = tuple(Patch(file=f"case_00{i}.nii.gz", start=(0, 0, 0), size=(10, 20, 20)) for i in range(6))
    ctx = make_query_context(dataset, query_size=12, patch_size=4, annotated=annotated, seed=3)
    patches = strategy.place(dataset, ctx)
    for i, patch in enumerate(patches):
        assert not any(patch.intersects(other) for other in patches[i + 1 :] + list(annotated))
    assert strategy.place(dataset, ctx) == patches
    other_seed = make_query_context(dataset, query_size=12, patch_size=4, annotated=annotated, seed=4)
    assert strategy.place(dataset, other_seed) != patches


def test_budget_below_two_per_label_is_refused_before_reading_anything(blob_pool):
    dataset = blob_pool(cases=6)
    strategy = load_registry().strategy("random-label2-all-classes")
    with pytest.raises(PlacementError, match=r"starting budget must be at least 2 x 3 labels.*= 6 patches"):
        strategy.place(dataset, make_query_context(dataset, query_size=5))
    assert dataset.reads == {}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("strategy", ALL_CLASSES, ids=IDS)
def test_case_without_foreground_and_rare_class(blob_pool, strategy):
    dataset = blob_pool(cases=6, empty=(0, 4), lesion_cases=(2, 3))
    ctx = make_query_context(dataset, query_size=20, patch_size=4, loop=0)
    draws = strategy.draw(dataset, ctx)
    assert len(draws) == 20
    assert {d.case for d in draws if d.label == 2} == {"case_002", "case_003"}
    assert dataset.reads == {case: 1 for case in dataset.pool_cases()}

    too_rare = blob_pool(cases=6, empty=(0, 4), lesion_cases=(2,))
    with pytest.raises(PlacementError, match=r"label 'lesion' \(2\) occurs in 1 \(case_002\)"):
        strategy.place(too_rare, ctx)
