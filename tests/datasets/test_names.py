"""The one dataset resolver: ids, folder names and short names, the nnU-Net way."""

import pytest

from nnactive_core.datasets.names import (
    DatasetNameError,
    dataset_folders,
    resolve_dataset_folder,
    resolve_dataset_name,
)


@pytest.fixture
def raw(tmp_path):
    for name in ("Dataset004_Hippocampus", "Dataset027_ACDC", "Dataset127_ACDC", "notadataset"):
        (tmp_path / "raw" / name).mkdir(parents=True)
    (tmp_path / "raw" / "Dataset005_file").write_text("a file, not a dataset")
    return tmp_path / "raw"


def test_listing_keeps_dataset_folders_only(raw):
    assert dataset_folders([raw, raw / "missing"]) == [
        "Dataset004_Hippocampus",
        "Dataset027_ACDC",
        "Dataset127_ACDC",
    ]


@pytest.mark.parametrize(
    "given", [4, "4", "004", "0004", "Hippocampus", "hippocampus", "Dataset004_Hippocampus"]
)
def test_every_form_names_the_same_dataset(raw, given):
    assert resolve_dataset_name(given, [raw]) == "Dataset004_Hippocampus"


def test_a_full_folder_name_is_taken_as_given(raw):
    """An adapter may build it on first use (the demo); setup says where it looked when it is absent."""
    assert resolve_dataset_name("Dataset900_Demo", [raw]) == "Dataset900_Demo"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("ACDC", "dataset name 'ACDC' is ambiguous in .*: Dataset027_ACDC, Dataset127_ACDC"),
        ("9", "no dataset with id 9 in .*; datasets there: Dataset004_Hippocampus, Dataset027_ACDC"),
        ("Hipocampus", "did you mean Dataset004_Hippocampus"),
    ],
)
def test_unknown_or_ambiguous_names_list_candidates(raw, given, message):
    with pytest.raises(DatasetNameError, match=message):
        resolve_dataset_name(given, [raw])


def test_folders_from_paths_or_names(raw, tmp_path, monkeypatch):
    assert resolve_dataset_folder("27", [raw]) == raw / "Dataset027_ACDC"
    assert resolve_dataset_folder(str(raw / "Dataset127_ACDC"), [raw]) == raw / "Dataset127_ACDC"
    monkeypatch.chdir(raw)
    assert resolve_dataset_folder("./notadataset", []).resolve() == (raw / "notadataset").resolve()
    (raw / "notadataset" / "dataset.json").write_text("{}")
    assert resolve_dataset_folder("notadataset", []).resolve() == (raw / "notadataset").resolve()
    with pytest.raises(DatasetNameError, match="does not exist"):
        resolve_dataset_folder(str(tmp_path / "gone"), [raw])
    with pytest.raises(DatasetNameError, match="no dataset Dataset900_Demo in"):
        resolve_dataset_folder("Dataset900_Demo", [raw])
    with pytest.raises(DatasetNameError, match="set nnActive_raw or nnUNet_raw"):
        resolve_dataset_folder("4", [])
