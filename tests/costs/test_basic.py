import numpy as np
import pytest

from nnactive_core.costs.basic import BASIC_COST_METRICS
from nnactive_core.patches.patch import Patch

LABELS = {"background": 0, "liver": 1, "tumour": 2}


def _measure(labels_in_patch: np.ndarray) -> dict:
    patch = Patch(file="case_000.nii.gz", start=(0, 0, 0), size=labels_in_patch.shape)
    columns: dict = {}
    for metric in BASIC_COST_METRICS:
        measured = metric.measure(patch, labels_in_patch, LABELS, 0)
        assert not set(measured) & set(columns), "two basic metrics write the same column"
        columns.update(measured)
    return columns


def test_counts_on_tiny_label_map():
    labels = np.zeros((2, 3, 4), dtype=np.uint8)
    labels[0, 0, :3] = 1
    labels[1, 2, 3] = 2
    columns = _measure(labels)
    assert columns["patches"] == 1
    assert columns["voxels"] == 24
    assert columns["foreground_voxels"] == 4
    assert columns["voxels_class_background"] == 20
    assert columns["voxels_class_liver"] == 3
    assert columns["voxels_class_tumour"] == 1
    assert columns["patches_class_background"] == 1
    assert columns["patches_class_liver"] == 1
    assert columns["patches_class_tumour"] == 1
    assert columns["patches_foreground"] == 1


def test_background_only_patch():
    columns = _measure(np.zeros((2, 2, 2), dtype=np.int16))
    assert columns["foreground_voxels"] == 0
    assert columns["voxels_class_liver"] == 0
    assert columns["patches_class_liver"] == 0
    assert columns["patches_foreground"] == 0
    assert columns["patches_class_background"] == 1


def test_foreground_respects_background_value():
    labels = np.full((1, 2, 2), 5)
    labels[0, 0, 0] = 1
    patch = Patch(file="c.nii.gz", start=(0, 0, 0), size=(1, 2, 2))
    metric = next(m for m in BASIC_COST_METRICS if m.name == "foreground-voxels")
    assert metric.measure(patch, labels, {"bg": 5, "a": 1}, 5) == {"foreground_voxels": 1}


@pytest.mark.parametrize("metric", BASIC_COST_METRICS, ids=lambda m: m.name)
def test_metrics_are_valid_plugin_objects(metric):
    from nnactive_core.plugins import NAME_PATTERN

    assert NAME_PATTERN.match(metric.name)
    assert metric.description and metric.unit
