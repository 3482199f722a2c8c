from collections import defaultdict

import numpy as np
import pytest

from nnactive_core.patches.patch import Patch
from nnactive_core.strategies.placement import PlacementError, PlacementSession
from nnactive_core.testing.synthetic import make_query_context
from nnactive_random_fg.class_cover import check_budget, cover_labels
from nnactive_random_fg.record import COVER


def _cover(dataset, per_label=2, trials=6000, **overrides):
    ctx = make_query_context(dataset, **overrides)
    session = PlacementSession(dataset, ctx)
    draws = cover_labels(
        session, ctx.label_values, per_label=per_label, rng=ctx.rng("test"), trials=trials, who="cover-test"
    )
    return session, draws


def _cases_per_label(draws) -> dict[int, set[str]]:
    cases = defaultdict(set)
    for draw in draws:
        cases[draw.label].add(draw.case)
    return cases


def test_every_label_including_background_in_two_distinct_cases(blob_pool):
    dataset = blob_pool(cases=10, lesion_cases=(2, 7))
    session, draws = _cover(dataset, query_size=10)
    assert len(draws) == 6 and session.placed == [d.patch for d in draws]
    assert {label: len(cases) for label, cases in _cases_per_label(draws).items()} == {0: 2, 1: 2, 2: 2}
    assert _cases_per_label(draws)[2] == {"case_002", "case_007"}
    for draw in draws:
        assert draw.mode == COVER
        assert (dataset.read_labels(draw.case)[draw.patch.slices] == draw.label).any()
    # spread: no case serves twice while unused cases with the label exist
    assert len({d.case for d in draws}) == 6


def test_cases_are_reused_only_when_a_label_has_no_unused_case(counting_dataset):
    maps = {f"c{i}": np.zeros((10, 10, 10), np.uint8) for i in range(3)}
    for labels in maps.values():
        labels[5, 5, 5] = 1
    _, draws = _cover(counting_dataset(maps, labels={"background": 0, "x": 1}), query_size=4, patch_size=3)
    assert all(len(cases) == 2 for cases in _cases_per_label(draws).values())
    assert len({d.case for d in draws}) == 3


def test_budget_smaller_than_two_per_label_is_refused():
    with pytest.raises(
        PlacementError, match=r"at least 2 x 3 labels \(background included\) = 6 patches.*got 5"
    ):
        check_budget((0, 1, 2), 2, 5, "random-label2-all-classes")
    check_budget((0, 1, 2), 2, 6, "random-label2-all-classes")


def test_rare_label_is_named_with_its_cases(blob_pool):
    dataset = blob_pool(cases=5, lesion_cases=(3,))
    with pytest.raises(PlacementError, match=r"label 'lesion' \(2\) occurs in 1 \(case_003\)"):
        _cover(dataset, query_size=6)


def test_missing_labels_are_all_named(blob_pool):
    dataset = blob_pool(cases=3, empty=(0, 1, 2))
    with pytest.raises(PlacementError, match=r"'organ' \(1\) occurs in 0 \(none\); label 'lesion' \(2\)"):
        _cover(dataset, query_size=6)


@pytest.mark.timeout(60)
def test_no_room_for_a_label_fails_naming_it(counting_dataset):
    maps = {f"c{i}": np.zeros((8, 8, 8), np.uint8) for i in range(2)}
    maps["c0"][0, 0, 0] = 1
    maps["c1"][0, 0, 0] = 1
    annotated = (Patch(file="c1.nii.gz", start=(0, 0, 0), size=(2, 2, 2)),)
    dataset = counting_dataset(maps, labels={"background": 0, "x": 1})
    with pytest.raises(PlacementError, match=r"only 1 of 2 patches centred on label 'x' \(1\)"):
        _cover(dataset, trials=200, query_size=4, patch_size=2, annotated=annotated)


def test_ties_are_served_in_label_order_as_published(blob_pool):
    # every case holds every label: all labels tie on every re-count, so they are served in label
    # order (the established code: a stable sort in dataset.json order), background first
    dataset = blob_pool(cases=8)
    _, draws = _cover(dataset, query_size=6)
    assert [d.label for d in draws] == [0, 0, 1, 1, 2, 2]


def test_rarest_label_is_served_first(blob_pool):
    dataset = blob_pool(cases=8, lesion_cases=(1, 4, 6))
    _, draws = _cover(dataset, query_size=6)
    assert [d.label for d in draws] == [2, 2, 0, 0, 1, 1]
