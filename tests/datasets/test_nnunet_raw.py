"""The ``nnunet-raw`` adapter on small hand-written nnU-Net raw folders."""

import numpy as np
import pytest
import SimpleITK as sitk

from nnactive_core.datasets.api import NOT_FREE, Dataset
from nnactive_core.datasets.nnunet_raw import NnunetRawAdapter, NnunetRawDataset
from nnactive_core.datasets.raw_format import DatasetError
from nnactive_core.datasets.validate import DatasetValidationError
from nnactive_core.plugins import load_registry

SHAPE = (6, 7, 8)


def test_cases_labels_and_oracle(tmp_path, make_dataset):
    root = make_dataset(tmp_path / "Dataset010_Toy", validation=("v1",))
    dataset = NnunetRawAdapter().open(root)
    assert isinstance(dataset, Dataset)
    assert dataset.name == "Dataset010_Toy" and dataset.root == root
    assert dataset.pool_cases() == ["a", "b", "c"] and dataset.validation_cases() == ["v1"]
    assert dataset.labels == {"background": 0, "liver": 1, "tumour": 2}
    assert dataset.ignore_label == 3 and dataset.background == 0
    labels = dataset.read_labels("b")
    assert labels.shape == SHAPE and np.issubdtype(labels.dtype, np.integer)
    assert set(np.unique(labels)) == {0, 2}
    assert dataset.read_labels("v1", "validation")[1, 2, 3] == 1
    assert dataset.shape("a") == SHAPE and dataset.shape("v1") == SHAPE
    assert dataset.image_files("a") == [root / "imagesTr" / "a_0000.nii.gz"]
    assert dataset.label_file("v1", "validation") == root / "labelsVal" / "v1.nii.gz"


def test_declared_ignore_is_used_and_not_a_label(tmp_path, make_dataset):
    labels = {"background": 0, "liver": 1, "tumour": 2, "ignore": 3}
    dataset = NnunetRawAdapter().open(make_dataset(tmp_path / "Dataset011_Toy", labels=labels))
    assert dataset.ignore_label == 3 and "ignore" not in dataset.labels


def test_no_validation_split_yet(tmp_path, make_dataset):
    dataset = NnunetRawAdapter().open(make_dataset(tmp_path / "Dataset012_Toy"))
    assert dataset.validation_cases() == []
    with pytest.raises(KeyError):
        dataset.label_file("a", "validation")


def test_channels_in_order(tmp_path, make_dataset):
    root = make_dataset(tmp_path / "Dataset013_Toy", channels=3)
    dataset = NnunetRawAdapter().open(root, validation="full")
    assert [p.name for p in dataset.image_files("c")] == ["c_0000.nii.gz", "c_0001.nii.gz", "c_0002.nii.gz"]


def test_free_labels(tmp_path, make_dataset):
    dataset = NnunetRawAdapter().open(
        make_dataset(tmp_path / "Dataset014_Toy", free=("a",)), validation="full"
    )
    free = dataset.read_free_labels("a")
    assert free.shape == SHAPE and set(np.unique(free)) == {0, NOT_FREE}
    assert dataset.read_free_labels("b") is None


def test_other_file_endings(tmp_path, make_dataset):
    dataset = NnunetRawAdapter().open(make_dataset(tmp_path / "Dataset015_Toy", file_ending=".nrrd"))
    assert dataset.case_of_file("a.nrrd") == "a"
    assert dataset.read_labels("a").shape == SHAPE


def test_case_of_file(tmp_path, make_dataset):
    dataset = NnunetRawAdapter().open(make_dataset(tmp_path / "Dataset016_Toy", validation=("v1",)))
    assert dataset.case_of_file("b.nii.gz") == "b"
    assert dataset.case_of_file("v1.nii.gz") == "v1"
    for bad in ("../b.nii.gz", "/abs/b.nii.gz", "b.nrrd", "b"):
        with pytest.raises(ValueError, match="not a label file name"):
            dataset.case_of_file(bad)
    with pytest.raises(KeyError, match="zz.nii.gz"):
        dataset.case_of_file("zz.nii.gz")


def test_open_validates_and_names_the_file(tmp_path, make_dataset):
    root = make_dataset(tmp_path / "Dataset017_Toy")
    (root / "labelsTr" / "b.nii.gz").unlink()
    with pytest.raises(DatasetValidationError, match=r"labelsTr/b\.nii\.gz: missing label file"):
        NnunetRawAdapter().open(root)
    assert NnunetRawAdapter().open(root, validation="none").pool_cases() == ["a", "b", "c"]


def test_open_errors(tmp_path):
    with pytest.raises(DatasetValidationError, match="dataset.json: missing"):
        NnunetRawAdapter().open(tmp_path)
    with pytest.raises(ValueError, match="validation must be one of"):
        NnunetRawAdapter().open(tmp_path, validation="thorough")
    with pytest.raises(TypeError, match="unknown option"):
        NnunetRawAdapter().open(tmp_path, seed=3)


def _write(array, path):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0, 1.0, 2.0))
    sitk.WriteImage(image, str(path))


def test_float_labels_must_be_whole(tmp_path, make_dataset):
    root = make_dataset(tmp_path / "Dataset018_Toy")
    _write(np.full(SHAPE, 1.0, dtype=np.float32), root / "labelsTr" / "a.nii.gz")
    dataset = NnunetRawDataset(root)
    assert dataset.read_labels("a").dtype == np.uint8
    _write(np.full(SHAPE, 0.5, dtype=np.float32), root / "labelsTr" / "a.nii.gz")
    with pytest.raises(DatasetError, match="a.nii.gz: label values are not whole numbers"):
        dataset.read_labels("a")


def test_registered_under_its_name():
    adapter = load_registry().get("dataset adapter", "nnunet-raw")
    assert isinstance(adapter, NnunetRawAdapter) and adapter.description
