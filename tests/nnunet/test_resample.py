"""Resampling a base dataset to the plans' spacing with nnU-Net's resampling functions: geometry,
originals, resumption and refusal of broken datasets. The plans are written by hand (no planning run)."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from nnactive_core.datasets.api import NOT_FREE
from nnactive_core.datasets.nnunet_raw import NnunetRawDataset
from nnactive_core.datasets.raw_format import DatasetError
from nnactive_core.datasets.validate import DatasetValidationError, validate_dataset
from nnactive_core.nnunet.resample import RECORD_KEY, is_resampled, resample_dataset, target_spacing

SHAPE = (10, 14, 12)
SPACING = (3.0, 1.0, 1.25)
DIRECTION = (0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
ORIGIN = (12.0, -40.0, 7.5)
CENTRE = np.array([4.5, 6.0, 6.5])


def _plans(path, spacing, transpose=(0, 1, 2), configurations=("3d_fullres",)):
    backward = [int(i) for i in np.argsort(transpose)]
    resampling = {
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
    }
    architecture = {
        "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {},
        "_kw_requires_import": [],
    }
    plans = {
        "dataset_name": "Dataset040_Toy",
        "plans_name": "nnUNetPlans",
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": list(transpose),
        "transpose_backward": backward,
        "configurations": {
            name: {"spacing": list(spacing), "architecture": architecture, **resampling}
            for name in configurations
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plans))
    return path


def _write(array, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(reversed(SPACING)))
    image.SetDirection(DIRECTION)
    image.SetOrigin(ORIGIN)
    sitk.WriteImage(image, str(path))


def _dataset(root, pool=("a", "b", "c"), validation=("v",), free=("a",)):
    grid = np.indices(SHAPE).astype(np.float32)
    distance = np.sqrt(
        (((grid - CENTRE[:, None, None, None]) * np.array(SPACING)[:, None, None, None]) ** 2).sum(0)
    )
    labels = (distance < 5.5).astype(np.uint8) + (distance < 2.5).astype(np.uint8)
    image = (100 * labels + 10 * np.sin(grid[2])).astype(np.float32)
    for split, cases in (("Tr", pool), ("Val", validation)):
        for case in cases:
            _write(image, root / f"images{split}" / f"{case}_0000.nii.gz")
            _write(labels, root / f"labels{split}" / f"{case}.nii.gz")
    for case in free:
        layer = np.full(SHAPE, NOT_FREE, dtype=np.uint8)
        layer[:2] = 0
        _write(layer, root / "addTr" / f"{case}.nii.gz")
    dataset_json = {
        "channel_names": {"0": "MRI"},
        "labels": {"background": 0, "outer": 1, "inner": 2},
        "numTraining": len(pool),
        "numVal": len(validation),
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(dataset_json))
    return root


def _centroid_mm(path, value):
    image = sitk.ReadImage(str(path))
    indices = np.argwhere(sitk.GetArrayFromImage(image) == value).mean(0)
    return np.array(image.TransformContinuousIndexToPhysicalPoint([float(i) for i in indices[::-1]]))


def test_resampled_to_target_spacing_with_geometry_kept(tmp_path):
    root = _dataset(tmp_path / "Dataset040_Toy")
    plans = _plans(tmp_path / "plans.json", (1.5, 1.0, 1.0))
    assert target_spacing(plans) == (1.5, 1.0, 1.0)
    result = resample_dataset(root, plans)
    assert result.spacing == (1.5, 1.0, 1.0) and result.cases == 4
    for folder in ("imagesTr", "labelsTr", "imagesVal", "labelsVal", "addTr"):
        assert (root / folder).is_dir() and (root / f"{folder}_original").is_dir()
    new = sitk.ReadImage(str(root / "labelsTr" / "a.nii.gz"))
    old = sitk.ReadImage(str(root / "labelsTr_original" / "a.nii.gz"))
    assert sitk.GetArrayFromImage(new).shape == (20, 14, 15)
    assert new.GetSpacing() == (1.0, 1.0, 1.5) and new.GetDirection() == DIRECTION
    image = sitk.ReadImage(str(root / "imagesTr" / "a_0000.nii.gz"))
    assert image.GetOrigin() == new.GetOrigin() and image.GetSpacing() == new.GetSpacing()
    assert sitk.GetArrayFromImage(image).dtype == np.float32

    def centre(img):
        size = np.array(img.GetSize(), dtype=float)
        return np.array(img.TransformContinuousIndexToPhysicalPoint(list((size - 1) / 2)))

    assert np.allclose(centre(new), centre(old), atol=1e-6)
    for value in (1, 2):
        assert np.allclose(
            _centroid_mm(root / "labelsTr" / "a.nii.gz", value),
            _centroid_mm(root / "labelsTr_original" / "a.nii.gz", value),
            atol=0.35,
        )
    assert set(np.unique(sitk.GetArrayFromImage(new))) == {0, 1, 2}
    free = sitk.GetArrayFromImage(sitk.ReadImage(str(root / "addTr" / "a.nii.gz")))
    assert set(np.unique(free)) == {0, NOT_FREE} and free.shape == (20, 14, 15)
    assert validate_dataset(root) == []
    dataset = NnunetRawDataset(root)
    assert dataset.shape("v") == (20, 14, 15)
    assert json.loads((root / "dataset.json").read_text())[RECORD_KEY]["spacing"] == [1.5, 1.0, 1.0]


def test_second_run_changes_nothing(tmp_path):
    root = _dataset(tmp_path / "Dataset041_Toy", validation=(), free=())
    plans = _plans(tmp_path / "plans.json", (1.5, 1.0, 1.0), configurations=("3d_fullres", "3d_lowres"))
    resample_dataset(root, plans)
    assert is_resampled(root)
    stamp = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    assert resample_dataset(root, plans).cases == 0
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == stamp
    with pytest.raises(DatasetError, match="already resampled for '3d_fullres'"):
        resample_dataset(root, plans, "3d_lowres")


def test_same_spacing_keeps_the_voxels(tmp_path):
    root = _dataset(tmp_path / "Dataset042_Toy", validation=(), free=())
    resample_dataset(root, _plans(tmp_path / "plans.json", SPACING))
    for name in ("imagesTr/b_0000.nii.gz", "labelsTr/b.nii.gz"):
        new, old = (
            sitk.ReadImage(str(root / name.replace("Tr/", suffix))) for suffix in ("Tr/", "Tr_original/")
        )
        assert np.array_equal(sitk.GetArrayFromImage(new), sitk.GetArrayFromImage(old))
        assert new.GetOrigin() == pytest.approx(old.GetOrigin()) and new.GetSpacing() == old.GetSpacing()


def test_transposed_plans(tmp_path):
    root = _dataset(tmp_path / "Dataset043_Toy", validation=(), free=())
    plans = _plans(tmp_path / "plans.json", (1.0, 1.5, 1.0), transpose=(1, 0, 2))
    assert target_spacing(plans) == (1.5, 1.0, 1.0)
    resample_dataset(root, plans)
    image = sitk.ReadImage(str(root / "imagesTr" / "a_0000.nii.gz"))
    assert sitk.GetArrayFromImage(image).shape == (20, 14, 15) and image.GetSpacing() == (1.0, 1.0, 1.5)


def test_interrupted_run_is_completed(tmp_path):
    plans = _plans(tmp_path / "plans.json", (1.5, 1.0, 1.0))
    reference = _dataset(tmp_path / "ref" / "Dataset044_Toy")
    resample_dataset(reference, plans)
    root = _dataset(tmp_path / "run" / "Dataset044_Toy")

    def killed(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        resample_dataset(root, plans, progress=killed)
    assert not (root / "imagesTr").exists() and (root / "imagesTr_original").exists()
    resample_dataset(root, plans)
    assert not list(root.glob(".*resampling"))
    for name in ("labelsTr/c.nii.gz", "imagesVal/v_0000.nii.gz", "addTr/a.nii.gz"):
        a, b = (sitk.GetArrayFromImage(sitk.ReadImage(str(r / name))) for r in (root, reference))
        assert np.array_equal(a, b)


def test_broken_dataset_is_left_untouched(tmp_path):
    root = _dataset(tmp_path / "Dataset045_Toy")
    (root / "labelsTr" / "b.nii.gz").unlink()
    before = sorted(p.name for p in root.iterdir())
    with pytest.raises(DatasetValidationError, match="b.nii.gz: missing label file"):
        resample_dataset(root, _plans(tmp_path / "plans.json", (1.5, 1.0, 1.0)))
    assert sorted(p.name for p in root.iterdir()) == before
    with pytest.raises(DatasetError, match="no configuration '2d'"):
        resample_dataset(root, _plans(tmp_path / "plans.json", (1.5, 1.0, 1.0)), "2d")
    with pytest.raises(DatasetError, match="missing.json: missing"):
        resample_dataset(root, tmp_path / "missing.json")
