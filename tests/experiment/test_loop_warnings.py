"""The warnings of a loop's validation result, from constructed nnU-Net summaries."""

from __future__ import annotations

import json
import math

import pytest

from nnactive_core.experiment.layout import ExperimentLayout, Roots
from nnactive_core.experiment.loop_warnings import (
    ABSENT,
    DICE_FELL,
    NO_FOREGROUND,
    LoopWarning,
    experiment_warnings,
    label_names,
    loop_warnings,
    mean_dice,
    read_warnings,
    write_warnings,
)
from nnactive_core.io import JsonFileError

NAMES = label_names({"background": 0, "organ": 1, "vessel": 2, "lesion": 3})


def _case(counts: dict[int, tuple[int, int, int]]) -> dict:
    """One case's metrics from (TP, FP, FN) per label, as nnU-Net's ``compute_metrics`` writes them
    (label keys as strings, like a summary read from JSON)."""
    metrics = {}
    for label, (tp, fp, fn) in counts.items():
        dice = math.nan if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
        metrics[str(label)] = {
            "Dice": dice,
            "TP": tp,
            "FP": fp,
            "FN": fn,
            "n_pred": tp + fp,
            "n_ref": tp + fn,
        }
    return {"metrics": metrics}


def _summary(cases: list[dict]) -> dict:
    """Per-label nan-means and the plain foreground mean, as nnU-Net's summary has them."""
    labels = list(cases[0]["metrics"])
    means = {}
    for label in labels:
        values = [c["metrics"][label]["Dice"] for c in cases if not math.isnan(c["metrics"][label]["Dice"])]
        means[label] = {"Dice": sum(values) / len(values) if values else math.nan}
    foreground = [means[label]["Dice"] for label in labels if label != "0"]
    return {
        "metric_per_case": cases,
        "mean": means,
        "foreground_mean": {"Dice": sum(foreground) / len(foreground)},
    }


def test_a_learned_loop_has_no_warnings():
    summary = _summary([_case({1: (90, 10, 10), 2: (20, 5, 5), 3: (8, 2, 2)})] * 3)
    assert loop_warnings(1, summary, NAMES, previous=summary) == []
    assert mean_dice(summary, NAMES).text() == f"{summary['foreground_mean']['Dice']:.4f}"


def test_a_class_never_predicted_is_named():
    summary = _summary(
        [
            _case({1: (90, 10, 10), 2: (0, 0, 30), 3: (8, 2, 2)}),
            _case({1: (80, 5, 5), 2: (0, 0, 0), 3: (1, 1, 1)}),
        ]
    )
    (warning,) = loop_warnings(0, summary, NAMES)
    assert warning.kind == NO_FOREGROUND and warning.classes == ("vessel",)
    assert "no voxel of vessel (in 1 of 2 cases)" in warning.message


def test_a_class_absent_from_validation_gives_the_mean_over_the_defined_classes():
    summary = _summary([_case({1: (90, 10, 10), 2: (20, 5, 5), 3: (0, 0, 0)})] * 2)
    assert math.isnan(summary["foreground_mean"]["Dice"]), "nnU-Net's convention"
    (warning,) = loop_warnings(0, summary, NAMES)
    assert warning.kind == ABSENT and warning.classes == ("lesion",)
    assert "undefined" in warning.message and "lesion in no validation case" in warning.message
    dice = mean_dice(summary, NAMES)
    organ, vessel = summary["mean"]["1"]["Dice"], summary["mean"]["2"]["Dice"]
    assert dice.reported == pytest.approx((organ + vessel) / 2)
    assert dice.undefined == ("lesion",)
    text = dice.text()
    assert "nan" not in text.lower()
    assert text.startswith(f"{(organ + vessel) / 2:.4f} over 2 of 3 classes") and "lesion" in text


def test_a_class_absent_but_predicted_scores_zero_and_is_flagged():
    summary = _summary([_case({1: (90, 10, 10), 2: (20, 5, 5), 3: (0, 7, 0)})] * 2)
    (warning,) = loop_warnings(0, summary, NAMES)
    assert warning.kind == ABSENT and "predicted anyway: lesion (Dice 0)" in warning.message
    assert math.isfinite(mean_dice(summary, NAMES).value)


def test_no_defined_class_says_so():
    summary = _summary([_case({1: (0, 0, 0), 2: (0, 0, 0), 3: (0, 0, 0)})])
    assert mean_dice(summary, NAMES).text().startswith("undefined (no class has a defined Dice")


def test_a_falling_mean_dice_names_the_classes_that_fell():
    before = _summary([_case({1: (90, 10, 10), 2: (20, 5, 5), 3: (8, 2, 2)})])
    after = _summary([_case({1: (91, 9, 9), 2: (5, 20, 20), 3: (6, 3, 3)})])
    (warning,) = loop_warnings(2, after, NAMES, previous=before)
    assert warning.kind == DICE_FELL and warning.classes == ("vessel", "lesion")
    assert warning.message.startswith(
        f"loop 2: mean Dice fell from {before['foreground_mean']['Dice']:.4f} (loop 1) to "
        f"{after['foreground_mean']['Dice']:.4f} although the budget grew; fell: vessel -0."
    )


def test_a_fall_within_noise_is_not_a_warning():
    before = _summary([_case({1: (90, 10, 10)})])
    after = _summary([_case({1: (89, 11, 10)})])
    assert before["foreground_mean"]["Dice"] - after["foreground_mean"]["Dice"] < 0.01
    assert loop_warnings(1, after, NAMES, previous=before) == []


def _layout(tmp_path) -> ExperimentLayout:
    return ExperimentLayout(roots=Roots.under(tmp_path), base="Dataset900_Demo", folder="Dataset001_X")


def test_warnings_round_trip_through_the_loop_folders(tmp_path):
    layout = _layout(tmp_path)
    first = LoopWarning(loop=0, kind=NO_FOREGROUND, classes=["vessel"], message="loop 0: vessel")
    second = LoopWarning(loop=1, kind=DICE_FELL, classes=[], message="loop 1: fell")
    write_warnings(layout.warnings_file(0), [first])
    write_warnings(layout.warnings_file(1), [second])
    layout.loop_results(2).mkdir()  # a loop not validated yet
    assert experiment_warnings(layout) == [first, second]
    assert json.loads(layout.warnings_file(0).read_text()) == {
        "warnings": [{"loop": 0, "kind": NO_FOREGROUND, "classes": ["vessel"], "message": "loop 0: vessel"}]
    }


def test_a_damaged_warnings_file_is_named(tmp_path):
    path = _layout(tmp_path).warnings_file(0)
    path.parent.mkdir(parents=True)
    path.write_text('{"warnings": [{"loop": 0, "kind": "x", "classes": "vessel", "message": "m"}]}')
    with pytest.raises(JsonFileError, match="warnings.json: not a loop warning"):
        read_warnings(path)
    path.write_text('{"warnings": 3}')
    with pytest.raises(JsonFileError, match="expected a 'warnings' list"):
        read_warnings(path)
