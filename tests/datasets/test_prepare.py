"""Validation split and derivative datasets (no nnU-Net needed)."""

import json

import pytest

from nnactive_core.datasets.nnunet_raw import NnunetRawDataset
from nnactive_core.datasets.prepare import (
    choose_validation,
    derive_dataset,
    group_of,
    parse_test_size,
    split_validation,
)
from nnactive_core.datasets.raw_format import DatasetError
from nnactive_core.datasets.validate import DatasetValidationError, validate_dataset

PATIENTS = [f"patient{p:03d}_frame{f:02d}" for p in range(1, 9) for f in (1, 12)]


def test_test_size_parsing():
    assert parse_test_size("0.25") == 0.25 and parse_test_size("3") == 3 and parse_test_size(0.5) == 0.5
    for bad in ("0", "1.0", "-2", "x", 0.0):
        with pytest.raises(ValueError):
            parse_test_size(bad)


def test_grouping_keeps_patients_together():
    assert group_of("patient001_frame01", "_") == "patient001"
    assert group_of("ACDC_patient001_frame01", "_") == "ACDC_patient001"
    assert group_of("case7", "_") == "case7" and group_of("case_7", None) == "case_7"
    chosen = choose_validation(PATIENTS, 0.25, separator="_")
    assert len(chosen) == 4
    groups = {group_of(c, "_") for c in chosen}
    assert len(groups) == 2
    assert all(f"{g}_frame01" in chosen and f"{g}_frame12" in chosen for g in groups)


def test_choice_is_seeded():
    assert choose_validation(PATIENTS, 4) == choose_validation(list(reversed(PATIENTS)), 4)
    others = {tuple(choose_validation(PATIENTS, 4, seed=s)) for s in range(6)}
    assert len(others) > 1
    with pytest.raises(ValueError, match="selects 0 of 16 cases"):
        choose_validation(PATIENTS, 0.05)


def test_split_moves_cases_and_is_idempotent(tmp_path, make_dataset):
    cases = [f"p{p}_s{s}" for p in range(4) for s in range(2)]
    root = make_dataset(tmp_path / "Dataset030_Toy", cases=cases, channels=2)
    result = split_validation(root, 0.5, separator="_")
    assert result.moved and len(result.pool) == 4 and len(result.validation) == 4
    dataset = NnunetRawDataset(root)
    assert dataset.validation_cases() == list(result.validation)
    assert not {group_of(c, "_") for c in dataset.pool_cases()} & {
        group_of(c, "_") for c in result.validation
    }
    assert len(list((root / "imagesVal").iterdir())) == 8
    dataset_json = json.loads((root / "dataset.json").read_text())
    assert (dataset_json["numTraining"], dataset_json["numVal"]) == (4, 4)
    assert validate_dataset(root) == []
    again = split_validation(root, 0.25)
    assert not again.moved and again.validation == result.validation


def test_interrupted_split_resumes_to_the_same_result(tmp_path, make_dataset):
    cases = [f"c{i}" for i in range(8)]
    expected = split_validation(make_dataset(tmp_path / "a" / "Dataset031_Toy", cases=cases), 4)
    root = make_dataset(tmp_path / "b" / "Dataset031_Toy", cases=cases)

    def killed(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        split_validation(root, 4, progress=killed)
    assert (root / ".nnactive_split").exists() and not (root / "imagesVal").exists()
    result = split_validation(root, 4)
    assert result.moved and result.validation == expected.validation
    assert not (root / ".nnactive_split").exists()
    assert validate_dataset(root) == []


def test_interrupted_split_refuses_other_settings(tmp_path, make_dataset):
    cases = [f"c{i}" for i in range(8)]
    root = make_dataset(tmp_path / "Dataset032_Toy", cases=cases)

    def killed(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        split_validation(root, 4, progress=killed)
    staged = {p.name.split(".")[0] for p in (root / ".nnactive_split" / "labels").iterdir()}
    assert len(staged) == 3
    other_seed = next(s for s in range(100) if not staged <= set(choose_validation(cases, 4, seed=s)))
    with pytest.raises(DatasetError, match=".nnactive_split: holds cases of an interrupted split"):
        split_validation(root, 4, seed=other_seed)


def test_derive_copies_a_seeded_fraction(tmp_path, make_dataset):
    root = make_dataset(tmp_path / "Dataset033_Toy", cases=[f"c{i}" for i in range(10)], free=("c1", "c2"))
    split_validation(root, 5)
    target, made = derive_dataset(root, 934, fraction=0.4, seed=7)
    assert made and target.name == "Dataset934_Toy_small" and target.parent == root.parent
    small = NnunetRawDataset(target)
    assert len(small.pool_cases()) == 2 and len(small.validation_cases()) == 2
    base = NnunetRawDataset(root)
    assert set(small.pool_cases()) <= set(base.pool_cases())
    assert set(small.validation_cases()) <= set(base.validation_cases())
    dataset_json = json.loads((target / "dataset.json").read_text())
    assert (dataset_json["numTraining"], dataset_json["numVal"]) == (2, 2)
    assert validate_dataset(target) == []
    for case in small.pool_cases():
        assert (small.read_free_labels(case) is None) == (base.read_free_labels(case) is None)
    assert derive_dataset(root, 934, fraction=0.4, seed=7) == (target, False)
    other = tmp_path / "other"
    other.mkdir()
    again, _ = derive_dataset(
        make_dataset(other / "Dataset033_Toy", cases=[f"c{i}" for i in range(10)]), 934, 0.4, 7
    )
    assert NnunetRawDataset(again).pool_cases() != [] and again != target


def test_derive_refuses_taken_ids_and_bad_datasets(tmp_path, make_dataset):
    root = make_dataset(tmp_path / "Dataset035_Toy")
    (tmp_path / "Dataset936_Other").mkdir()
    with pytest.raises(DatasetError, match="Dataset936_Other"):
        derive_dataset(root, 936)
    with pytest.raises(ValueError, match="fraction"):
        derive_dataset(root, 937, fraction=1.5)
    (root / "labelsTr" / "a.nii.gz").unlink()
    with pytest.raises(DatasetValidationError, match="a.nii.gz"):
        derive_dataset(root, 937)
    assert not list(tmp_path.glob("*937*")) and not list(tmp_path.glob(".Dataset937*"))
