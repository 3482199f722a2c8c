"""The stopping signal on constructed predictions: agreement, ensemble disagreement, the rule."""

from __future__ import annotations

import numpy as np
import pytest

from nnactive_core.experiment import stopping
from nnactive_core.experiment.layout import ExperimentLayout, Roots


def one_hot(segmentation: np.ndarray, classes: int) -> np.ndarray:
    return np.stack([(segmentation == label) for label in range(classes)]).astype(np.float16)


def stack(*segmentations: np.ndarray, classes: int = 3) -> np.ndarray:
    """members x classes x Z x Y x X from each member's segmentation."""
    return np.stack([one_hot(s, classes) for s in segmentations])


def test_spec_parses_with_defaults():
    assert stopping.parse_stop_when("stable") == stopping.StopRule(threshold=0.95, loops=2)
    assert stopping.parse_stop_when("stable:0.9") == stopping.StopRule(threshold=0.9, loops=2)
    assert stopping.parse_stop_when(" stable:0.99,3 ") == stopping.StopRule(threshold=0.99, loops=3)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("stabel", "expected stable[:threshold"),
        ("stable:1.5", "must be in (0, 1]"),
        ("stable:0", "must be in (0, 1]"),
        ("stable:0.9.1", "must be a number"),
        ("stable:0.9,0", "at least 1"),
        ("stable:0.9,", "expected stable"),
    ],
)
def test_bad_spec_is_one_clear_line(spec, says):
    with pytest.raises(stopping.StopSpecError) as error:
        stopping.parse_stop_when(spec)
    assert says in str(error.value) and "\n" not in str(error.value)


def test_stop_set_is_drawn_from_the_seed_and_recorded(tmp_path):
    pool = [f"case_{i:02d}" for i in range(20)]
    first = stopping.stop_set(tmp_path / "stop_set.json", pool, seed=3, size=4)
    assert len(first) == 4 and first == sorted(first) and set(first) <= set(pool)
    assert stopping.choose_stop_set(pool, 3, 4) == first
    assert stopping.choose_stop_set(pool, 4, 4) != first
    # recorded: a later call reads the file, whatever the arguments say
    assert stopping.stop_set(tmp_path / "stop_set.json", pool[:5], seed=9, size=2) == first
    assert stopping.choose_stop_set(pool[:3], 1, 10) == pool[:3]


def test_reduce_case_segments_the_member_mean_and_counts_member_votes():
    a = np.zeros((4, 4, 4), dtype=np.uint8)
    a[0:2, 0:2, 0:2] = 1  # 8 voxels of class 1
    b = a.copy()
    b[0, 0, 0] = 0  # member 2 drops one voxel of class 1 ...
    b[3, 3, 3] = 2  # ... and adds one of class 2
    reduction = stopping.reduce_case(stack(a, b))
    assert reduction.all_members.tolist() == [0, 7, 0]
    assert reduction.any_member.tolist() == [0, 8, 1]
    # the mean of one-hot votes ties at [0,0,0] and [3,3,3]: argmax takes the lower class
    assert int((reduction.segmentation == 1).sum()) == 7 and int((reduction.segmentation == 2).sum()) == 0


def test_reduce_case_reads_big_cases_slab_by_slab():
    segmentation = np.zeros((stopping.SLAB * 2 + 3, 2, 2), dtype=np.uint8)
    segmentation[-1] = 1
    reduction = stopping.reduce_case(stack(segmentation, segmentation))
    assert np.array_equal(reduction.segmentation, segmentation)
    assert reduction.all_members.tolist() == [0, 4, 0]


def test_agreement_is_pooled_dice_per_class_over_predicted_classes():
    previous = np.zeros((2, 10), dtype=np.uint8)
    current = previous.copy()
    previous[0, :4] = 1
    current[0, :2] = 1  # class 1: overlap 2, sizes 4 + 2 -> Dice 4/6
    previous[1, :5] = 2
    current[1, :5] = 2  # class 2: identical -> 1
    dice = stopping.class_dice([previous[0], previous[1]], [current[0], current[1]], classes=4)
    assert dice[1] == pytest.approx(2 / 3) and dice[2] == 1.0 and dice[3] is None


def reductions(*cases: np.ndarray) -> dict[str, stopping.CaseReduction]:
    return {f"c{i}": stopping.reduce_case(stack(case, case)) for i, case in enumerate(cases)}


def test_measure_without_previous_loop_has_no_agreement():
    case = np.zeros((3, 3, 3), dtype=np.uint8)
    case[1, 1, 1] = 1
    record = stopping.measure(0, ["c0"], reductions(case), classes=3, members=2, previous=None)
    assert record["agreement"] is None and record["disagreement"] == 0.0 and record["stop_set"] == ["c0"]


def test_measure_agreement_against_the_previous_loop():
    case = np.zeros((3, 3, 3), dtype=np.uint8)
    case[0] = 1
    previous = {"c0": np.where(np.arange(27).reshape(3, 3, 3) < 6, 1, 0).astype(np.uint8)}
    record = stopping.measure(1, ["c0"], reductions(case), classes=3, members=2, previous=previous)
    # 9 predicted now, 6 before, all 6 inside the 9
    assert record["agreement"] == pytest.approx(2 * 6 / 15)
    assert record["agreement_per_class"] == {"1": pytest.approx(0.8), "2": None}


def test_nothing_predicted_in_either_loop_is_undefined_not_stable():
    empty = np.zeros((2, 2, 2), dtype=np.uint8)
    record = stopping.measure(1, ["c0"], reductions(empty), classes=2, members=2, previous={"c0": empty})
    assert record["agreement"] is None
    assert stopping.held_loops([record], 0.5) == 0


def test_disagreement_of_members():
    a = np.zeros((1, 1, 10), dtype=np.uint8)
    b = a.copy()
    a[..., :6] = 1
    b[..., 2:8] = 1  # all members: 4, any member: 8 -> 0.5
    reduction = stopping.reduce_case(stack(a, b, classes=2))
    assert stopping.disagreement([reduction], members=2) == pytest.approx(0.5)
    assert stopping.disagreement([reduction], members=1) == 0.0
    empty = stopping.reduce_case(stack(np.zeros((2, 2, 2), dtype=np.uint8), classes=2))
    assert stopping.disagreement([empty], members=2) is None


def records(*agreements):
    return [{"loop": loop, "agreement": value} for loop, value in enumerate(agreements)]


def test_rule_needs_the_threshold_held_for_k_loops_in_a_row():
    rule = stopping.StopRule(threshold=0.9, loops=2)
    assert stopping.stop_reason(rule, records(None, 0.95), 1) is None
    assert stopping.stop_reason(rule, records(None, 0.95, 0.85), 2) is None
    assert "loop 3" in stopping.stop_reason(rule, records(None, 0.95, 0.92, 0.97), 3)
    assert stopping.stop_reason(None, records(None, 1.0, 1.0), 2) is None
    assert stopping.would_stop_at(rule, records(None, 0.95, 0.85, 0.91, 0.93, 0.99)) == 4
    assert stopping.would_stop_at(rule, records(None, 0.5, 0.6)) is None
    # a loop without a signal (none recorded) breaks the run of stable loops
    assert stopping.held_loops([*records(None, 0.95), None, {"agreement": 0.99}], 0.9) == 1


def test_record_loop_keeps_predictions_for_the_next_loop(tmp_path):
    layout = ExperimentLayout(roots=Roots.under(tmp_path), base="Dataset001_X", folder="Dataset002_X__e")
    rule = stopping.StopRule(threshold=0.9, loops=1)
    case = np.zeros((4, 4, 4), dtype=np.uint8)
    case[:2] = 1
    first = stopping.StopSetWatch(["c0"])
    first.see("c0", stack(case, case, classes=2))
    first.see("other", stack(case, case, classes=2))
    assert first.missing() == [] and list(first.reductions) == ["c0"]
    record = stopping.record_loop(layout, rule, 0, first)
    assert record["agreement"] is None and record["stop"] is None
    assert layout.stop_set_predictions(0).is_file() and layout.stability_file(0).is_file()
    second = stopping.StopSetWatch(["c0"])
    second.see("c0", stack(case, case, classes=2))
    record = stopping.record_loop(layout, rule, 1, second)
    assert record["agreement"] == 1.0 and record["held_loops"] == 1 and "loop 1" in record["stop"]
    assert [r["loop"] for r in stopping.experiment_signal(layout)] == [0, 1]
    assert stopping.signal_line(record).startswith("loop 1: stop-set agreement 1.000 with loop 0")
