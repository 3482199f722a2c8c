"""``nnactive data``: every malformed dataset is reported naming its file, with a non-zero exit, and
no preparation step writes anything into a dataset that fails validation."""

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from nnactive_core.cli.data import data
from nnactive_core.datasets.demo import DemoParameters, build_demo_dataset

TEMPLATE = DemoParameters(seed=1, n_cases=4, n_validation=0, size=16)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    folder, _ = build_demo_dataset(tmp_path_factory.mktemp("template"), TEMPLATE)
    return folder


@pytest.fixture
def dataset(tmp_path, template):
    target = tmp_path / "raw" / template.name
    shutil.copytree(template, target)
    return target


def invoke(*args):
    return CliRunner().invoke(data, [str(a) for a in args], catch_exceptions=False)


def snapshot(folder: Path) -> dict:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else None
        for p in sorted(folder.rglob("*"))
    }


def _json(root, **changes):
    path = root / "dataset.json"
    payload = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    path.write_text(json.dumps(payload))


def _rewrite(path, array=None, **geometry):
    image = sitk.ReadImage(str(path))
    new = sitk.GetImageFromArray(sitk.GetArrayFromImage(image) if array is None else array)
    new.CopyInformation(image) if array is None else None
    new.SetSpacing(geometry.get("spacing", image.GetSpacing()))
    new.SetOrigin(geometry.get("origin", image.GetOrigin()))
    sitk.WriteImage(new, str(path))


def _labels(root, case="demo_001"):
    return root / "labelsTr" / f"{case}.nii.gz"


def _image(root, case="demo_001", channel=0):
    return root / "imagesTr" / f"{case}_{channel:04d}.nii.gz"


def _add_validation_copy(root, case="demo_002"):
    for kind, name in (("images", f"{case}_0000.nii.gz"), ("labels", f"{case}.nii.gz")):
        (root / f"{kind}Val").mkdir(exist_ok=True)
        shutil.copy(root / f"{kind}Tr" / name, root / f"{kind}Val" / name)
    _json(root, numVal=1)


def _outside_symlink(root):
    outside = root.parent.parent / "outside_0000.nii.gz"
    shutil.copy(_image(root), outside)
    _image(root).unlink()
    os.symlink(outside, _image(root))


def _undeclared_value(root):
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(_labels(root))))
    labels[0, 0, 0] = 7
    _rewrite(_labels(root), labels)


def _truncate(path):
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


MALFORMED = {
    "dataset.json missing": (lambda r: (r / "dataset.json").unlink(), "dataset.json", "missing"),
    "dataset.json malformed": (
        lambda r: (r / "dataset.json").write_text("{labels: "),
        "dataset.json",
        "malformed JSON",
    ),
    "labels missing": (lambda r: _json(r, labels=None), "dataset.json", "'labels' missing"),
    "channel_names missing": (
        lambda r: _json(r, channel_names=None),
        "dataset.json",
        "'channel_names' missing",
    ),
    "file_ending missing": (lambda r: _json(r, file_ending=None), "dataset.json", "'file_ending' missing"),
    "file_ending unsupported": (
        lambda r: _json(r, file_ending=".jpg"),
        "dataset.json",
        "'file_ending' is '.jpg'",
    ),
    "numTraining mismatch": (lambda r: _json(r, numTraining=9), "dataset.json", "numTraining is 9"),
    "duplicate key": (
        lambda r: (r / "dataset.json").write_text(
            (r / "dataset.json").read_text().replace('"numTraining"', '"numTraining": 4, "numTraining"', 1)
        ),
        "dataset.json",
        "'numTraining' appears twice",
    ),
    "ignore not highest": (
        lambda r: _json(r, labels={"background": 0, "organ": 1, "ignore": 2, "gland": 3}),
        "dataset.json",
        "'ignore' (2) must be the highest",
    ),
    "explicit file lists": (
        lambda r: _json(r, dataset={"x": {"images": ["../x_0000.nii.gz"], "label": "../x"}}),
        "dataset.json",
        "'dataset'",
    ),
    "unreadable image": (
        lambda r: _image(r).write_bytes(b"not an image" * 8),
        "imagesTr/demo_001_0000.nii.gz",
        "unreadable image",
    ),
    "truncated image": (lambda r: _truncate(_image(r)), "imagesTr/demo_001_0000.nii.gz", "corrupt image"),
    "truncated label": (lambda r: _truncate(_labels(r)), "labelsTr/demo_001.nii.gz", "corrupt image"),
    "shape mismatch": (
        lambda r: _rewrite(_labels(r), np.zeros((16, 16, 15), np.uint8)),
        "labelsTr/demo_001.nii.gz",
        "shape (z, y, x) (16, 16, 15)",
    ),
    "spacing mismatch": (
        lambda r: _rewrite(_labels(r), spacing=(1.0, 1.0, 3.0)),
        "labelsTr/demo_001.nii.gz",
        "spacing",
    ),
    "origin mismatch": (
        lambda r: _rewrite(_labels(r), origin=(5.0, 0.0, 0.0)),
        "labelsTr/demo_001.nii.gz",
        "origin",
    ),
    "missing channel": (
        lambda r: _json(r, channel_names={"0": "MRI", "1": "CT"}),
        "imagesTr/demo_000_0001.nii.gz",
        "missing channel file",
    ),
    "extra channel": (
        lambda r: shutil.copy(_image(r), _image(r, channel=1)),
        "imagesTr/demo_001_0001.nii.gz",
        "not in channel_names",
    ),
    "missing label file": (lambda r: _labels(r).unlink(), "labelsTr/demo_001.nii.gz", "missing label file"),
    "label without image": (
        lambda r: shutil.copy(_labels(r), _labels(r, "demo_009")),
        "labelsTr/demo_009.nii.gz",
        "label file without images",
    ),
    "misnamed image": (
        lambda r: shutil.copy(_image(r), r / "imagesTr" / "scan.nii.gz"),
        "imagesTr/scan.nii.gz",
        "not named <case>_XXXX",
    ),
    "undeclared label value": (
        _undeclared_value,
        "labelsTr/demo_001.nii.gz",
        "label value(s) [7] not declared",
    ),
    "case in pool and validation": (_add_validation_copy, "imagesVal/demo_002_0000.nii.gz", "listed twice"),
    "validation labels missing": (lambda r: (r / "imagesVal").mkdir(), "labelsVal", "missing folder"),
    "symlink outside": (_outside_symlink, "imagesTr/demo_001_0000.nii.gz", "outside the dataset folder"),
    "leftover hidden image": (
        lambda r: shutil.copy(_image(r), r / "imagesTr" / ".demo_001_0000.nii.gz.x.tmp.nii.gz"),
        "imagesTr/.demo_001_0000.nii.gz.x.tmp.nii.gz",
        "hidden image file",
    ),
    "free labels with other values": (
        lambda r: (r / "addTr").mkdir() or shutil.copy(_image(r), r / "addTr" / "demo_001.nii.gz"),
        "addTr/demo_001.nii.gz",
        "label values are not whole",
    ),
    "free labels of an unknown case": (
        lambda r: (r / "addTr").mkdir() or shutil.copy(_labels(r), r / "addTr" / "demo_077.nii.gz"),
        "addTr/demo_077.nii.gz",
        "neither imagesTr nor imagesVal",
    ),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_dataset_is_reported_and_nothing_is_written(name, dataset):
    damage, file, phrase = MALFORMED[name]
    damage(dataset)
    raw_root = dataset.parent
    before = snapshot(raw_root)

    result = invoke("check", dataset)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if file in line]
    assert any(phrase in line for line in lines), result.output

    for args in (("split", dataset), ("derive", dataset, "--target-id", 950)):
        result = invoke(*args)
        assert result.exit_code != 0, (args, result.output)
        assert file in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert snapshot(raw_root) == before


def test_check_lists_every_problem(dataset):
    _labels(dataset).unlink()
    _undeclared_value_case = _labels(dataset, "demo_002")
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(_undeclared_value_case)))
    labels[0, 0, 0] = 9
    _rewrite(_undeclared_value_case, labels)
    _json(dataset, numTraining=5)
    result = invoke("check", dataset)
    assert result.exit_code == 1
    assert "labelsTr/demo_001.nii.gz: missing label file" in result.output
    assert "labelsTr/demo_002.nii.gz: label value(s) [9]" in result.output
    assert "dataset.json: numTraining is 5" in result.output
    assert "3 problem(s)" in result.output


def test_check_clean_dataset(dataset):
    result = invoke("check", dataset)
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output and "4 pool" in result.output


def test_check_missing_folder(tmp_path):
    result = invoke("check", tmp_path / "nowhere")
    assert result.exit_code != 0 and f"dataset folder {tmp_path / 'nowhere'} does not exist" in result.output


def test_split_is_seeded_idempotent_and_updates_dataset_json(dataset):
    result = invoke("split", dataset, "--test-size", "2")
    assert result.exit_code == 0, result.output
    assert "2 pool, 2 validation" in result.output
    dataset_json = json.loads((dataset / "dataset.json").read_text())
    assert (dataset_json["numTraining"], dataset_json["numVal"]) == (2, 2)
    assert (
        len(list((dataset / "labelsVal").iterdir())) == 2
        and len(list((dataset / "imagesVal").iterdir())) == 2
    )
    assert not (dataset / ".nnactive_split").exists()
    before = snapshot(dataset)
    again = invoke("split", dataset, "--test-size", "2")
    assert again.exit_code == 0 and "already split" in again.output
    assert snapshot(dataset) == before
    assert invoke("check", dataset).exit_code == 0


def test_bad_test_size(dataset):
    for value, phrase in (
        ("1.5", "strictly between 0 and 1"),
        ("abc", "fraction in (0, 1) or a count"),
        ("4", "selects 4 of 4 cases"),
    ):
        result = invoke("split", dataset, "--test-size", value)
        assert result.exit_code != 0 and phrase in result.output, result.output


def test_derive_is_idempotent(dataset):
    assert invoke("split", dataset, "--test-size", "0.5").exit_code == 0
    result = invoke("derive", dataset, "--target-id", 950, "--fraction", "0.5")
    assert result.exit_code == 0, result.output
    target = dataset.parent / "Dataset950_Demo_small"
    assert f"derived: {target}" in result.output
    assert invoke("check", target).exit_code == 0
    again = invoke("derive", dataset, "--target-id", 950, "--fraction", "0.5")
    assert again.exit_code == 0 and "already there" in again.output
    other = invoke("derive", dataset, "--target-id", 950, "--fraction", "0.25")
    assert other.exit_code != 0 and "Dataset950_Demo_small" in other.output


def test_demo_command_reports_fractions_and_is_idempotent(tmp_path):
    args = ("demo", "--output", tmp_path, "--cases", 3, "--validation-cases", 1, "--size", 16, "--seed", 2)
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "built:" in result.output and "lesion" in result.output and "%" in result.output
    again = invoke(*args)
    assert again.exit_code == 0 and "already there" in again.output
    clash = invoke("demo", "--output", tmp_path, "--cases", 4, "--size", 16)
    assert clash.exit_code != 0 and "nnactive_demo.json" in clash.output


def test_import_msd_needs_an_output(tmp_path, monkeypatch):
    monkeypatch.delenv("nnActive_raw", raising=False)
    task = tmp_path / "Task05_Prostate"
    task.mkdir()
    result = invoke("import-msd", task)
    assert result.exit_code != 0 and "nnActive_raw" in result.output
    result = invoke("import-msd", task, "--output", tmp_path / "raw")
    assert (
        result.exit_code != 0 and "missing imagesTr" in result.output and "Task05_Prostate" in result.output
    )


def test_resample_without_plans_names_the_plans_file(dataset):
    result = invoke("resample", dataset)
    assert result.exit_code != 0
    assert "nnUNetPlans.json: missing" in result.output


@pytest.mark.e2e
def test_preparation_pipeline_on_the_demo(tmp_path):
    """demo -> split -> plan (real nnU-Net) -> resample -> derive, each step run twice."""
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    raw = tmp_path / "raw" / "nnUNet_raw"
    assert invoke("demo", "--output", raw, "--cases", 8, "--validation-cases", 0, "--size", 24).exit_code == 0
    dataset = raw / "Dataset900_Demo"
    # two cases with a coarser z spacing, so resampling has something to do (the median stays 2 mm)
    for case in ("demo_001", "demo_005"):
        for path in (_image(dataset, case), _labels(dataset, case)):
            _rewrite(path, spacing=(1.0, 1.0, 2.5))

    for _ in range(2):
        result = invoke("split", dataset, "--test-size", "0.25")
        assert result.exit_code == 0, result.output
    assert "already split" in result.output and "6 pool, 2 validation" in result.output

    for _ in range(2):
        result = invoke("plan", dataset, "--processes", 1)
        assert result.exit_code == 0, result.output
    assert "already planned" in result.output
    plans = json.loads(
        (tmp_path / "raw" / "nnUNet_preprocessed" / dataset.name / "nnUNetPlans.json").read_text()
    )
    assert plans["configurations"]["3d_fullres"]["spacing"] == [2.0, 1.0, 1.0]

    result = invoke("resample", dataset)
    assert result.exit_code == 0, result.output
    assert "spacing (2, 1, 1)" in result.output
    assert "already resampled" in invoke("resample", dataset).output
    for folder in ("imagesTr", "labelsTr", "imagesVal", "labelsVal"):
        assert (dataset / f"{folder}_original").is_dir()
    for case in ("demo_001", "demo_005"):
        for split in ("Tr", "Val"):
            path = dataset / f"labels{split}" / f"{case}.nii.gz"
            if path.exists():
                image = sitk.ReadImage(str(path))
                assert image.GetSpacing() == (1.0, 1.0, 2.0) and image.GetSize()[2] == 30
    assert invoke("check", dataset).exit_code == 0
    verify_dataset_integrity(str(dataset), num_processes=1)

    result = invoke("derive", dataset, "--target-id", 901, "--fraction", "0.5")
    assert result.exit_code == 0, result.output
    small = raw / "Dataset901_Demo_small"
    assert invoke("check", small).exit_code == 0
    assert "already there" in invoke("derive", dataset, "--target-id", 901, "--fraction", "0.5").output
    verify_dataset_integrity(str(small), num_processes=1)
