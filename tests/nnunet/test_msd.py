"""Importing a (tiny, hand-made) Medical Segmentation Decathlon task through nnU-Net's converter."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from nnactive_core.datasets.nnunet_raw import NnunetRawDataset
from nnactive_core.datasets.raw_format import DatasetError
from nnactive_core.datasets.validate import validate_dataset
from nnactive_core.nnunet.msd import import_msd, msd_target_name


def _task(root, name="Task07_Toy"):
    task = root / name
    rng = np.random.default_rng(0)
    for folder, cases in (("imagesTr", ("toy_1", "toy_2")), ("imagesTs", ("toy_9",))):
        (task / folder).mkdir(parents=True)
        for case in cases:
            # MSD stores channels as the 4th axis: here 2 channels of 5 x 6 x 7
            image = sitk.GetImageFromArray(rng.normal(size=(2, 5, 6, 7)).astype(np.float32), isVector=False)
            sitk.WriteImage(image, str(task / folder / f"{case}.nii.gz"))
    (task / "labelsTr").mkdir()
    for case in ("toy_1", "toy_2"):
        labels = np.zeros((5, 6, 7), dtype=np.uint8)
        labels[1:3, 1:3, 1:3] = 1
        sitk.WriteImage(sitk.GetImageFromArray(labels), str(task / "labelsTr" / f"{case}.nii.gz"))
    (task / "._toy_1.nii.gz").write_bytes(b"macOS resource fork")
    dataset_json = {
        "name": "Toy",
        "modality": {"0": "T1", "1": "T2"},
        "labels": {"0": "background", "1": "thing"},
        "numTraining": 2,
        "numTest": 1,
        "training": [
            {"image": f"./imagesTr/{c}.nii.gz", "label": f"./labelsTr/{c}.nii.gz"} for c in ("toy_1", "toy_2")
        ],
        "test": ["./imagesTs/toy_9.nii.gz"],
    }
    (task / "dataset.json").write_text(json.dumps(dataset_json))
    return task


def test_target_names():
    assert msd_target_name("/x/Task04_Hippocampus") == "Dataset004_Hippocampus"
    assert msd_target_name("Task04_Hippocampus", 104) == "Dataset104_Hippocampus"
    with pytest.raises(DatasetError, match="not an MSD task folder name"):
        msd_target_name("Hippocampus")


def test_import_converts_and_is_idempotent(tmp_path):
    task = _task(tmp_path)
    raw = tmp_path / "raw"
    target, made = import_msd(task, raw)
    assert made and target == raw / "Dataset007_Toy"
    assert validate_dataset(target) == []
    dataset = NnunetRawDataset(target)
    assert dataset.pool_cases() == ["toy_1", "toy_2"] and dataset.labels == {"background": 0, "thing": 1}
    assert [p.name for p in dataset.image_files("toy_2")] == ["toy_2_0000.nii.gz", "toy_2_0001.nii.gz"]
    assert sorted(p.name for p in raw.iterdir()) == ["Dataset007_Toy"]
    assert import_msd(task, raw) == (target, False)
    with pytest.raises(DatasetError, match="Dataset007_Toy: dataset id 007 is taken"):
        import_msd(_task(tmp_path / "other", "Task07_Else"), raw)


def test_broken_task_leaves_nothing(tmp_path):
    task = _task(tmp_path)
    (task / "imagesTr" / "toy_2.nii.gz").write_bytes(b"broken")
    raw = tmp_path / "raw"
    with pytest.raises(DatasetError, match="Task07_Toy"):
        import_msd(task, raw, dataset_id=77)
    assert list(raw.iterdir()) == []
