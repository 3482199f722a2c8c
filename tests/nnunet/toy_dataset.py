"""A tiny synthetic 3D dataset for the nnU-Net adapter tests: noise with a sphere (label 1) and an
ellipsoid (label 2), written in nnU-Net's raw layout, plus partially annotated copies of its labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LABELS = {"background": 0, "a": 1, "b": 2}
IGNORE = 3


def _write(array: np.ndarray, path: Path, spacing=(1.0, 1.0, 1.0)) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


def make_case(rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).astype(np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    centre_a = rng.uniform(0.3, 0.45, 3) * np.array(shape)
    radius = rng.uniform(5, 7)
    labels[np.linalg.norm(grid - centre_a, axis=-1) < radius] = 1
    centre_b = rng.uniform(0.6, 0.7, 3) * np.array(shape)
    axes = rng.uniform(3, 6, 3)
    labels[(((grid - centre_b) / axes) ** 2).sum(-1) < 1] = 2
    image = rng.normal(0, 20, shape).astype(np.float32) + 100 * (labels == 1) + 200 * (labels == 2)
    return image.astype(np.float32), labels


def make_base_dataset(raw_root: Path, name: str, n_train: int, n_val: int, seed: int = 0) -> Path:
    """``raw_root/name`` with imagesTr/labelsTr (pool) and imagesVal/labelsVal (held out)."""
    rng = np.random.default_rng(seed)
    folder = raw_root / name
    for split, count in (("Tr", n_train), ("Val", n_val)):
        for i in range(count):
            shape = tuple(int(s) for s in rng.integers(32, 49, 3))
            image, labels = make_case(rng, shape)
            case = f"case_{split.lower()}{i:03d}"
            _write(image, folder / f"images{split}" / f"{case}_0000.nii.gz")
            _write(labels, folder / f"labels{split}" / f"{case}.nii.gz")
    dataset_json = {
        "channel_names": {"0": "MRI"},
        "labels": LABELS,
        "numTraining": n_train,
        "file_ending": ".nii.gz",
    }
    (folder / "dataset.json").write_text(json.dumps(dataset_json, indent=2))
    return folder


def read(path: Path) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def partial_labels(full: np.ndarray, boxes: list[tuple[tuple[int, int, int], int]]) -> np.ndarray:
    """``ignore`` everywhere except inside the cubes ``(start, size)``."""
    partial = np.full(full.shape, IGNORE, dtype=np.uint8)
    for start, size in boxes:
        box = tuple(slice(s, s + size) for s in start)
        partial[box] = full[box]
    return partial


def make_experiment_dataset(base: Path, raw_root: Path, name: str, annotated: dict[str, list]) -> Path:
    """An experiment dataset beside ``base``: dataset.json with ``ignore``, partial labelsTr (all-ignore for
    cases not in ``annotated``), symlinked images and validation folders."""
    folder = raw_root / name
    folder.mkdir(parents=True)
    dataset_json = json.loads((base / "dataset.json").read_text())
    dataset_json["labels"] = {**LABELS, "ignore": IGNORE}
    (folder / "dataset.json").write_text(json.dumps(dataset_json, indent=2))
    for sub in ("imagesTr", "imagesVal", "labelsVal"):
        (folder / sub).symlink_to(base / sub, target_is_directory=True)
    import SimpleITK as sitk

    for label_file in sorted((base / "labelsTr").glob("*.nii.gz")):
        case = label_file.name[: -len(".nii.gz")]
        full = read(label_file)
        partial = partial_labels(full, annotated.get(case, []))
        image = sitk.GetImageFromArray(partial)
        image.CopyInformation(sitk.ReadImage(str(label_file)))
        (folder / "labelsTr").mkdir(exist_ok=True)
        sitk.WriteImage(image, str(folder / "labelsTr" / label_file.name))
    return folder
