"""A tiny CT-like dataset: air at -1000 HU around a soft-tissue body (about -100 HU) holding an organ
(label 1, about +60 HU) and a bright lesion (label 2, about +300 HU), with channel name ``CT`` so that
nnU-Net plans ``CTNormalization``, which clips and scales by foreground intensity statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LABELS = {"background": 0, "organ": 1, "lesion": 2}
IGNORE = 3
HU = {"air": -1000.0, "body": -100.0, "organ": 60.0, "lesion": 300.0}
SHAPE = (24, 28, 28)


def make_case(rng: np.random.Generator, shape: tuple[int, int, int] = SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """(image in HU as float32, labels as uint8)."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).astype(np.float32)
    centre = np.array(shape) / 2
    body = (((grid - centre) / (np.array(shape) * 0.42)) ** 2).sum(-1) < 1
    organ = np.linalg.norm(grid - (centre + rng.uniform(-2, 2, 3)), axis=-1) < rng.uniform(5, 7)
    lesion = np.linalg.norm(grid - (centre + rng.uniform(-1, 1, 3)), axis=-1) < 2.5
    labels = np.zeros(shape, dtype=np.uint8)
    labels[organ & body] = 1
    labels[lesion & body] = 2
    image = np.full(shape, HU["air"], dtype=np.float32)
    image[body] = HU["body"]
    image[labels == 1] = HU["organ"]
    image[labels == 2] = HU["lesion"]
    image += rng.normal(0, 10, shape).astype(np.float32)
    return image, labels


def write_image(array: np.ndarray, path: Path) -> None:
    import SimpleITK as sitk

    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path), True)


def read_image(path: Path) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def dataset_json(n_train: int, with_ignore: bool = False) -> dict:
    labels = {**LABELS, "ignore": IGNORE} if with_ignore else dict(LABELS)
    return {"channel_names": {"0": "CT"}, "labels": labels, "numTraining": n_train, "file_ending": ".nii.gz"}


def make_raw_dataset(folder: Path, n_train: int, n_val: int = 0, seed: int = 0) -> Path:
    """``folder`` as an nnU-Net raw dataset: imagesTr/labelsTr and, with ``n_val``, imagesVal/labelsVal."""
    rng = np.random.default_rng(seed)
    for split, count in (("Tr", n_train), ("Val", n_val)):
        for index in range(count):
            image, labels = make_case(rng)
            case = f"ct_{split.lower()}{index:03d}"
            write_image(image, folder / f"images{split}" / f"{case}_0000.nii.gz")
            write_image(labels, folder / f"labels{split}" / f"{case}.nii.gz")
    (folder / "dataset.json").write_text(json.dumps(dataset_json(n_train), indent=2))
    return folder
