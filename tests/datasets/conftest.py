"""A small hand-written nnU-Net raw dataset for the dataset tests."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from nnactive_core.datasets.api import NOT_FREE

SHAPE = (6, 7, 8)


def _write(array, path, spacing=(1.0, 1.0, 2.0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))


def write_dataset(
    root, cases=("a", "b", "c"), validation=(), channels=1, labels=None, free=(), file_ending=".nii.gz"
):
    labels = labels or {"background": 0, "liver": 1, "tumour": 2}
    rng = np.random.default_rng(0)
    for split, names in (("Tr", cases), ("Val", validation)):
        for index, case in enumerate(names):
            for channel in range(channels):
                image = rng.normal(size=SHAPE).astype(np.float32)
                _write(image, root / f"images{split}" / f"{case}_{channel:04d}{file_ending}")
            label = np.zeros(SHAPE, dtype=np.uint8)
            label[1:3, 2:4, 3:5] = 1 + index % 2
            _write(label, root / f"labels{split}" / f"{case}{file_ending}")
    for case in free:
        layer = np.full(SHAPE, NOT_FREE, dtype=np.uint8)
        layer[0] = 0
        _write(layer, root / "addTr" / f"{case}{file_ending}")
    dataset_json = {
        "channel_names": {str(c): f"c{c}" for c in range(channels)},
        "labels": labels,
        "numTraining": len(cases),
        "file_ending": file_ending,
    }
    if validation:
        dataset_json["numVal"] = len(validation)
    (root / "dataset.json").write_text(json.dumps(dataset_json))
    return root


@pytest.fixture
def make_dataset():
    """``make_dataset(root, cases=..., validation=..., channels=..., labels=..., free=..., file_ending=...)``
    writes cases of shape (6, 7, 8) with one small labelled box each and returns ``root``."""
    return write_dataset
