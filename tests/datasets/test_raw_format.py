"""The raw-format readers shared by the adapter, validation, preparation and annotation."""

import json

import numpy as np
import pytest

from nnactive_core.datasets.raw_format import (
    DatasetFileError,
    as_label_array,
    hidden_files,
    list_case_files,
    list_channel_files,
    load_dataset_json,
)


def test_channel_files_by_case_and_misnamed_files(tmp_path):
    for name in (
        "a_0000.nii.gz",
        "a_0001.nii.gz",
        "b_0000.nii.gz",
        "b.nii.gz",
        "notes.txt",
        ".a_0002.nii.gz",
    ):
        (tmp_path / name).write_bytes(b"")
    cases, misnamed = list_channel_files(tmp_path, ".nii.gz")
    assert {case: sorted(channels) for case, channels in cases.items()} == {"a": [0, 1], "b": [0]}
    assert [p.name for p in misnamed] == ["b.nii.gz"]
    assert [p.name for p in hidden_files(tmp_path)] == [".a_0002.nii.gz"]
    assert sorted(list_case_files(tmp_path, ".nii.gz")) == ["a_0000", "a_0001", "b", "b_0000"]


def test_dataset_json_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetFileError, match=r"dataset\.json: missing"):
        load_dataset_json(tmp_path)
    (tmp_path / "dataset.json").write_text("{")
    with pytest.raises(DatasetFileError, match=r"dataset\.json: not valid JSON"):
        load_dataset_json(tmp_path)
    (tmp_path / "dataset.json").write_text("[]")
    with pytest.raises(DatasetFileError, match=r"dataset\.json: expected a JSON object"):
        load_dataset_json(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"file_ending": ".nii.gz"}))
    assert load_dataset_json(tmp_path) == {"file_ending": ".nii.gz"}


def test_label_arrays_are_integers(tmp_path):
    assert as_label_array(np.array([1.0, 300.0]), tmp_path / "x.nii.gz").dtype == np.int16
    assert as_label_array(np.array([0.0, 2.0]), tmp_path / "x.nii.gz").dtype == np.uint8
    with pytest.raises(DatasetFileError, match=r"x\.nii\.gz: label values are not whole numbers"):
        as_label_array(np.array([0.5]), tmp_path / "x.nii.gz")
