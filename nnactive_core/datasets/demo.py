"""The built-in demo dataset: procedurally generated 3D phantoms, written as a plain nnU-Net raw dataset
(``Dataset900_Demo``) so that nnU-Net and nnactive use it like any real one.

Each case is a body in air with four structures of very different size and contrast: a large organ,
a medium bright gland, a thin vessel (well under 1% of voxels) and small dark lesions inside the organ
that about half the cases lack. Every case has its own pose and size, a smooth intensity inhomogeneity
(bias field), partial-volume blur and noise, and anisotropic spacing, so the foreground/background
imbalance of real scans is there. Everything is drawn from ``default_rng([seed, case index])``: the
same seed gives the same arrays, and more cases never change the first ones."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np

from nnactive_core.datasets.api import DatasetAdapter
from nnactive_core.datasets.nnunet_raw import NnunetRawDataset, open_nnunet_raw
from nnactive_core.datasets.raw_format import DatasetError, write_image
from nnactive_core.io import JsonFileError, atomic_write_json, read_json

DEMO_NAME = "Demo"
DEFAULT_ID = 900
PARAMETERS_FILE = "nnactive_demo.json"
GENERATOR_VERSION = 2
"""Raise whenever generated arrays change, so an existing demo folder is not taken for the new one."""
FILE_ENDING = ".nii.gz"
LABELS = {"background": 0, "organ": 1, "gland": 2, "vessel": 3, "lesion": 4}
FOLDER_PATTERN = re.compile(r"^Dataset(\d{3,})_(.+)$")

# Intensities before bias field and noise (air 0). Every structure differs from what surrounds it by at
# least 0.35, seven noise standard deviations. Trained on fully labelled 48^3 cases for 12 x 16
# iterations (the tiny profile), nnU-Net reaches Dice ~0.94 (organ) and ~0.82 (gland); the thin vessel
# and the small lesions need longer training: the rare classes active learning has to go after.
INTENSITY = {"body": 0.25, "organ": 0.65, "gland": 1.05, "vessel": 1.5, "lesion": 0.3}
NOISE = 0.05
SCALE = 100.0


def _integer(option: str, value, minimum: int | None = None) -> None:
    """The demo's options arrive from configs and grid files: a bad one is named."""
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        wanted = "an integer" + (f" of at least {minimum}" if minimum is not None else "")
        raise ValueError(f"demo option {option!r} must be {wanted}, got {value!r}")


@attrs.frozen(kw_only=True)
class DemoParameters:
    seed: int = attrs.field(default=0, validator=lambda i, a, v: _integer(a.name, v))
    n_cases: int = attrs.field(default=30, validator=lambda i, a, v: _integer(a.name, v, 1))
    """Pool cases (``imagesTr``)."""
    n_validation: int = attrs.field(default=8, validator=lambda i, a, v: _integer(a.name, v, 0))
    """Held-out cases (``imagesVal``)."""
    size: int = attrs.field(default=64, validator=lambda i, a, v: _integer(a.name, v, 16))
    """Voxels per axis."""
    spacing: tuple[float, float, float] = attrs.field(default=(2.0, 1.0, 1.0), converter=tuple)
    """(z, y, x) in mm."""

    def record(self) -> dict:
        return {"generator_version": GENERATOR_VERSION, **attrs.asdict(self), "spacing": list(self.spacing)}


def _rotation(rng: np.random.Generator, max_degrees: float) -> np.ndarray:
    angles = np.deg2rad(rng.uniform(-max_degrees, max_degrees, size=3))
    rotation = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = np.cos(angle), np.sin(angle)
        i, j = [a for a in range(3) if a != axis]
        step = np.eye(3)
        step[i, i], step[i, j], step[j, i], step[j, j] = c, -s, s, c
        rotation = rotation @ step
    return rotation


def _ellipsoid(grid: np.ndarray, centre, semi_axes, rotation: np.ndarray) -> np.ndarray:
    """Boolean mask of a rotated ellipsoid on a (3, Z, Y, X) grid of normalised coordinates."""
    offset = grid - np.asarray(centre, dtype=np.float32)[:, None, None, None]
    local = np.tensordot(rotation.T.astype(np.float32), offset, axes=1)
    scaled = local / np.asarray(semi_axes, dtype=np.float32)[:, None, None, None]
    return np.einsum("i...,i...->...", scaled, scaled) <= 1.0


def _grid(size: int) -> np.ndarray:
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"))


def _draw_labels(rng: np.random.Generator, grid: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Label map and body mask of one case."""
    voxel = 2.0 / (grid.shape[1] - 1)
    labels = np.zeros(grid.shape[1:], dtype=np.uint8)
    body_axes = np.array([0.92, 0.8, 0.88]) * rng.uniform(0.92, 1.0, 3)
    body = _ellipsoid(grid, rng.uniform(-0.05, 0.05, 3), body_axes, _rotation(rng, 8))

    organ_centre = np.array([0.0, -0.05, 0.3]) + rng.uniform(-0.08, 0.08, 3)
    organ_axes = np.array([0.6, 0.48, 0.48]) * rng.uniform(0.85, 1.15, 3)
    organ_rotation = _rotation(rng, 30)
    organ = _ellipsoid(grid, organ_centre, organ_axes, organ_rotation) & body
    labels[organ] = LABELS["organ"]

    gland_centre = np.array([0.0, 0.25, -0.42]) + rng.uniform(-0.08, 0.08, 3)
    gland_axes = np.array([0.38, 0.25, 0.28]) * rng.uniform(0.8, 1.2, 3)
    labels[_ellipsoid(grid, gland_centre, gland_axes, _rotation(rng, 40)) & body] = LABELS["gland"]

    # A tube winding along z: in-plane distance to a smooth centre line, so it stays thin everywhere.
    radius = max(0.075 * rng.uniform(0.85, 1.15), 1.05 * voxel)
    phase, wiggle = rng.uniform(0, 2 * np.pi, 2), rng.uniform(0.05, 0.12, 2)
    z = grid[0, :, :1, :1]
    centre_y = -0.4 + rng.uniform(-0.05, 0.05) + wiggle[0] * np.sin(2.2 * z + phase[0])
    centre_x = -0.02 + rng.uniform(-0.08, 0.08) + wiggle[1] * np.cos(1.7 * z + phase[1])
    vessel = ((grid[1] - centre_y) ** 2 + (grid[2] - centre_x) ** 2 <= radius**2) & body
    labels[vessel] = LABELS["vessel"]

    # Lesions sit inside the organ; every fifth case has one so that small splits still see the class.
    if rng.random() < 0.4 or index % 5 == 0:
        for _ in range(rng.integers(1, 3)):
            direction = rng.normal(size=3)
            offset = organ_axes * 0.55 * rng.uniform(0, 1) * direction / np.linalg.norm(direction)
            lesion_radius = max(rng.uniform(0.09, 0.14), 1.5 * voxel)
            lesion = _ellipsoid(grid, organ_centre + organ_rotation @ offset, [lesion_radius] * 3, np.eye(3))
            labels[lesion & organ] = LABELS["lesion"]
    return labels, body


def _render(rng: np.random.Generator, grid: np.ndarray, labels: np.ndarray, body: np.ndarray) -> np.ndarray:
    """Intensities with partial-volume blur, a smooth multiplicative bias field and noise."""
    from scipy.ndimage import gaussian_filter

    intensity = np.where(body, np.float32(INTENSITY["body"]), np.float32(0.0))
    for name in ("organ", "gland", "vessel", "lesion"):
        intensity[labels == LABELS[name]] = INTENSITY[name]
    intensity = gaussian_filter(intensity, sigma=0.6)
    linear, quadratic = rng.uniform(-0.15, 0.15, 3), rng.uniform(-0.1, 0.1, 3)
    bias = np.exp(
        np.tensordot(linear.astype(np.float32), grid, axes=1)
        + np.tensordot(quadratic.astype(np.float32), grid**2, axes=1)
    )
    noise = rng.normal(0.0, NOISE, size=intensity.shape).astype(np.float32)
    return (SCALE * (intensity * bias + noise)).astype(np.float32)


def generate_case(
    index: int, parameters: DemoParameters, grid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Image (float32) and labels (uint8), both (z, y, x), of case ``index``."""
    grid = _grid(parameters.size) if grid is None else grid
    rng = np.random.default_rng([parameters.seed, index])
    labels, body = _draw_labels(rng, grid, index)
    return _render(rng, grid, labels, body), labels


def case_name(index: int) -> str:
    return f"demo_{index:03d}"


def _write(array: np.ndarray, path: Path, spacing: tuple[float, float, float]) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in reversed(spacing)))
    extent = [(n - 1) * s for n, s in zip(reversed(array.shape), reversed(spacing), strict=True)]
    image.SetOrigin(tuple(-e / 2 for e in extent))
    write_image(image, path)


def _dataset_json(parameters: DemoParameters) -> dict:
    return {
        "name": DEMO_NAME,
        "description": "nnactive demo: procedurally generated 3D phantoms (organ, gland, vessel, lesion)",
        "channel_names": {"0": "MRI"},
        "labels": dict(LABELS),
        "numTraining": parameters.n_cases,
        "numVal": parameters.n_validation,
        "file_ending": FILE_ENDING,
        "tensorImageSize": "3D",
        "licence": "CC0",
    }


def write_demo_dataset(
    folder: Path, parameters: DemoParameters, progress: Callable[[int, int], None] | None = None
) -> None:
    """Write the demo dataset into ``folder`` (which must not exist yet or be empty)."""
    grid = _grid(parameters.size)
    splits = [("imagesTr", "labelsTr")] * parameters.n_cases + [
        ("imagesVal", "labelsVal")
    ] * parameters.n_validation
    total = len(splits)
    for index, (images, labels) in enumerate(splits):
        image, label = generate_case(index, parameters, grid)
        (folder / images).mkdir(parents=True, exist_ok=True)
        (folder / labels).mkdir(parents=True, exist_ok=True)
        _write(image, folder / images / f"{case_name(index)}_0000{FILE_ENDING}", parameters.spacing)
        _write(label, folder / labels / f"{case_name(index)}{FILE_ENDING}", parameters.spacing)
        if progress is not None:
            progress(index + 1, total)
    atomic_write_json(folder / "dataset.json", _dataset_json(parameters))
    atomic_write_json(folder / PARAMETERS_FILE, parameters.record())


def demo_folder(location: Path, dataset_id: int | None = None) -> Path:
    """``location`` is either the dataset folder itself (``DatasetNNN_...``) or the folder to put
    ``Dataset900_Demo`` in."""
    location = Path(location)
    if FOLDER_PATTERN.match(location.name) and dataset_id is None:
        return location
    return location / f"Dataset{DEFAULT_ID if dataset_id is None else dataset_id:03d}_{DEMO_NAME}"


def _recorded(folder: Path) -> dict | None:
    try:
        return read_json(folder / PARAMETERS_FILE)
    except JsonFileError:
        return None


def build_demo_dataset(
    location: Path,
    parameters: DemoParameters | None = None,
    dataset_id: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, bool]:
    """Build the demo dataset unless it is there already with the same parameters. Returns the
    folder and whether it was built now. It is written into a temporary folder beside the target
    and renamed into place, so a killed run never leaves a half-written dataset."""
    parameters = parameters or DemoParameters()
    folder = demo_folder(location, dataset_id)
    if folder.exists():
        recorded = _recorded(folder)
        if recorded == parameters.record():
            return folder, False
        if recorded is None:
            raise DatasetError(
                f"{folder}: exists but is not an nnactive demo dataset ({PARAMETERS_FILE} missing)"
            )
        raise DatasetError(
            f"{folder / PARAMETERS_FILE}: the demo there was generated with {recorded}, not "
            f"{parameters.record()}; remove the folder or choose another location or id"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write_demo_dataset(staging, parameters, progress)
        os.rename(staging, folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if _recorded(folder) == parameters.record():
            return folder, False
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder, True


def class_fractions(dataset, split: str = "pool") -> dict[str, float]:
    """Label name -> fraction of all voxels of the split's cases (read one case at a time)."""
    cases = dataset.pool_cases() if split == "pool" else dataset.validation_cases()
    highest = max(dataset.labels.values())
    counts = np.zeros(highest + 1, dtype=np.int64)
    for case in cases:
        labels = dataset.read_labels(case, split)
        counts += np.bincount(labels.ravel(), minlength=highest + 1)[: highest + 1]
    total = max(int(counts.sum()), 1)
    return {
        name: float(counts[value] / total)
        for name, value in sorted(dataset.labels.items(), key=lambda i: i[1])
    }


class DemoAdapter(DatasetAdapter):
    name = "demo"
    description = (
        "Built-in 3D phantom dataset (organ, gland, thin vessel, rare lesion), generated on first use."
    )
    generates_dataset = True

    def open(
        self,
        location: Path,
        seed: int = 0,
        n_cases: int = 30,
        size: int = 64,
        n_validation: int = 8,
        dataset_id: int | None = None,
        validation: str = "structure",
        **options,
    ) -> NnunetRawDataset:
        if options:
            raise TypeError(f"dataset adapter {self.name!r}: unknown option(s) {', '.join(sorted(options))}")
        parameters = DemoParameters(seed=seed, n_cases=n_cases, size=size, n_validation=n_validation)
        folder, _ = build_demo_dataset(Path(location), parameters, dataset_id=dataset_id)
        return open_nnunet_raw(folder, validation=validation)
