"""Dataset validation details not covered through ``nnactive data check``: levels, formats, labels."""

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from nnactive_core.datasets.raw_format import nifti_truncation
from nnactive_core.datasets.validate import DatasetValidationError, Problem, check_dataset, validate_dataset

SHAPE = (6, 7, 8)


def _messages(root, level="full"):
    return [f"{p.file.relative_to(root)}: {p.message}" for p in validate_dataset(root, level=level)]


def test_clean_dataset_at_every_level(tmp_path, make_dataset):
    root = make_dataset(tmp_path / "Dataset020_Toy", validation=("v",), channels=2)
    for level in ("structure", "headers", "full"):
        assert validate_dataset(root, level=level) == []
    with pytest.raises(ValueError, match="level must be one of"):
        validate_dataset(root, level="deep")


def test_levels_read_only_what_they_promise(tmp_path, make_dataset):
    root = make_dataset(tmp_path / "Dataset021_Toy")
    (root / "imagesTr" / "b_0000.nii.gz").write_bytes(b"\x00" * 64)
    assert validate_dataset(root, level="structure") == []
    assert _messages(root, "headers") == [
        _messages(root, "full")[0],
    ]
    assert "imagesTr/b_0000.nii.gz: unreadable image header" in _messages(root, "headers")[0]


def test_nan_in_a_format_that_keeps_it(tmp_path, make_dataset):
    root = make_dataset(tmp_path / "Dataset022_Toy", file_ending=".nrrd")
    image = np.ones(SHAPE, dtype=np.float32)
    image[2, 2, 2] = np.nan
    written = sitk.GetImageFromArray(image)
    written.SetSpacing((1.0, 1.0, 2.0))
    sitk.WriteImage(written, str(root / "imagesTr" / "c_0000.nrrd"))
    assert _messages(root) == ["imagesTr/c_0000.nrrd: contains NaN or infinite values"]


def test_label_declarations(tmp_path, make_dataset):
    root = make_dataset(tmp_path / "Dataset023_Toy")
    cases = {
        "gap": ({"background": 0, "a": 1, "b": 3}, "must be consecutive"),
        "shared": ({"background": 0, "a": 1, "b": 1, "c": 2}, "share the value 1"),
        "no background": ({"a": 0, "b": 1, "c": 2}, "'background': 0"),
        "negative": ({"background": 0, "a": -1}, "non-negative integer"),
        "text": ({"background": 0, "a": "one"}, "non-negative integer"),
        "empty": ({}, "non-empty object"),
    }
    for name, (labels, phrase) in cases.items():
        payload = json.loads((root / "dataset.json").read_text())
        payload["labels"] = labels
        (root / "dataset.json").write_text(json.dumps(payload))
        messages = _messages(root, "structure")
        assert any(m.startswith("dataset.json:") and phrase in m for m in messages), (name, messages)


def test_region_labels_are_accepted(tmp_path, make_dataset):
    labels = {"background": 0, "whole": [1, 2], "core": 2}
    root = make_dataset(tmp_path / "Dataset024_Toy", labels=labels)
    assert validate_dataset(root) == []


def test_declared_ignore_may_appear_in_label_files(tmp_path, make_dataset):
    labels = {"background": 0, "liver": 1, "tumour": 2, "ignore": 3}
    root = make_dataset(tmp_path / "Dataset025_Toy", labels=labels)
    label = sitk.ReadImage(str(root / "labelsTr" / "a.nii.gz"))
    array = sitk.GetArrayFromImage(label)
    array[0] = 3
    written = sitk.GetImageFromArray(array)
    written.CopyInformation(label)
    sitk.WriteImage(written, str(root / "labelsTr" / "a.nii.gz"))
    assert validate_dataset(root) == []


def test_progress_and_error_listing(tmp_path, make_dataset):
    root = make_dataset(tmp_path / "Dataset026_Toy", validation=("v",))
    calls = []
    check_dataset(root, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    (root / "labelsTr" / "a.nii.gz").unlink()
    (root / "labelsVal" / "v.nii.gz").unlink()
    with pytest.raises(DatasetValidationError) as caught:
        check_dataset(root)
    assert len(caught.value.problems) == 2
    assert "2 problem(s)" in str(caught.value) and "labelsVal/v.nii.gz: missing label file" in str(
        caught.value
    )
    assert str(Problem(file=Path("x.nii.gz"), message="broken")) == "x.nii.gz: broken"


def test_same_case_with_other_letter_case_is_a_duplicate(tmp_path, make_dataset):
    root = make_dataset(tmp_path / "Dataset027_Toy", cases=("a", "b"), validation=("A",))
    assert any("listed twice" in m for m in _messages(root, "structure"))


def test_symlinks_inside_the_dataset_are_fine(tmp_path, make_dataset):
    root = make_dataset(tmp_path / "Dataset028_Toy")
    stored = root / "store"
    stored.mkdir()
    (root / "imagesTr" / "a_0000.nii.gz").rename(stored / "a_0000.nii.gz")
    (root / "imagesTr" / "a_0000.nii.gz").symlink_to(stored / "a_0000.nii.gz")
    assert validate_dataset(root) == []
    (stored / "a_0000.nii.gz").unlink()
    assert any("broken symlink" in m for m in _messages(root, "structure"))


def test_linked_split_folder_of_an_experiment_is_fine(tmp_path, make_dataset):
    base = make_dataset(tmp_path / "Dataset029_Base")
    experiment = make_dataset(tmp_path / "group" / "Dataset001_Experiment")
    for folder in ("imagesTr",):
        for path in (experiment / folder).iterdir():
            path.unlink()
        (experiment / folder).rmdir()
        (experiment / folder).symlink_to(base / folder, target_is_directory=True)
    assert validate_dataset(experiment) == []


def test_nifti_truncation_detects_uncompressed_files(tmp_path):
    path = tmp_path / "x.nii"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 8, 8), np.int16)), str(path))
    assert nifti_truncation(path) is None
    path.write_bytes(path.read_bytes()[:600])
    assert "truncated" in nifti_truncation(path)
    path.write_bytes(b"\x01" * 400)
    assert nifti_truncation(path) == "not a NIfTI header"
