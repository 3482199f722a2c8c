"""Resample a base dataset to the spacing of its nnU-Net plans, keeping the originals.

Patch coordinates refer to the grid nnU-Net's 3d_fullres configuration works on, so every case of
the base dataset is put on that grid once: ``imagesTr`` -> ``imagesTr_original`` and a resampled
``imagesTr`` (likewise ``labelsTr``, ``imagesVal``, ``labelsVal`` and ``addTr``). Resampling uses the
plans' own functions (``resampling_fn_data`` / ``resampling_fn_seg``, with nnU-Net's axis transposition),
but nothing is cropped and nothing is normalised. Direction is kept; the origin is moved so that the
volume's physical centre stays where it was, since nnU-Net's resampling maps the image extents onto
each other (align-corners off): the old first voxel centre is not a voxel centre of the new grid.

Each folder is built in a hidden staging folder and renamed into place, so a killed run resumes and
a finished one is skipped."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path

import attrs
import numpy as np

from nnactive_core.datasets.raw_format import (
    DATASET_JSON,
    FREE_FOLDER,
    SPLITS,
    DatasetError,
    list_channel_files,
    load_dataset_json,
    read_image,
    read_image_information,
)
from nnactive_core.io import atomic_write_json

ORIGINAL_SUFFIX = "_original"
RECORD_KEY = "nnactive_resampled"
SITK_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".mha", ".gipl")


@attrs.frozen(kw_only=True)
class ResampleResult:
    spacing: tuple[float, ...]
    """Target spacing (z, y, x)."""
    cases: int
    """Cases resampled now (0 when everything was done before)."""


def _configuration(plans_file: str, configuration: str):
    """(PlansManager, ConfigurationManager), reloaded when the plans file changes."""
    return _load_configuration(plans_file, configuration, Path(plans_file).stat().st_mtime_ns)


@cache
def _load_configuration(plans_file: str, configuration: str, _modified: int):
    from nnactive_core.nnunet.environment import configure_process_defaults

    configure_process_defaults()
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = PlansManager(plans_file)
    if configuration not in plans.available_configurations:
        raise DatasetError(
            f"{plans_file}: no configuration {configuration!r} "
            f"(available: {', '.join(plans.available_configurations)})"
        )
    return plans, plans.get_configuration(configuration)


def target_spacing(plans_file: Path, configuration: str = "3d_fullres") -> tuple[float, float, float]:
    """The configuration's spacing in the dataset's own (z, y, x) order."""
    plans, manager = _configuration(str(plans_file), configuration)
    spacing = np.array(manager.spacing, dtype=float)[plans.transpose_backward]
    return tuple(float(s) for s in spacing)  # type: ignore[return-value]


def _resample(
    array: np.ndarray, spacing: np.ndarray, plans_file: str, configuration: str, is_seg: bool
) -> np.ndarray:
    """(c, z, y, x) array at ``spacing`` onto the configuration's grid, through nnU-Net's transposed
    axis order as its preprocessor does."""
    from nnunetv2.preprocessing.resampling.default_resampling import compute_new_shape

    plans, manager = _configuration(plans_file, configuration)
    forward, backward = list(plans.transpose_forward), list(plans.transpose_backward)
    data = array.transpose([0, *[a + 1 for a in forward]])
    current = spacing[forward]
    target = np.array(manager.spacing, dtype=float)
    new_shape = compute_new_shape(data.shape[1:], current, target)
    function = manager.resampling_fn_seg if is_seg else manager.resampling_fn_data
    resampled = function(data, new_shape, current, target)
    return np.ascontiguousarray(resampled.transpose([0, *[a + 1 for a in backward]]))


def _write(array: np.ndarray, reference, spacing_zyx: np.ndarray, path: Path) -> None:
    """Write one (z, y, x) volume on the new grid; origin keeps the physical centre of ``reference``."""
    import SimpleITK as sitk

    direction = np.array(reference.GetDirection()).reshape(3, 3)
    old_spacing, old_size = np.array(reference.GetSpacing()), np.array(reference.GetSize())
    new_spacing, new_size = spacing_zyx[::-1], np.array(array.shape[::-1])
    centre = np.array(reference.GetOrigin()) + direction @ (old_spacing * (old_size - 1) / 2)
    origin = centre - direction @ (new_spacing * (new_size - 1) / 2)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in new_spacing))
    image.SetOrigin(tuple(float(o) for o in origin))
    image.SetDirection(reference.GetDirection())
    sitk.WriteImage(image, str(path), useCompression=True)


def _label_dtype(array: np.ndarray) -> np.ndarray:
    if array.min(initial=0) >= 0 and array.max(initial=0) <= 255:
        return array.astype(np.uint8)
    return array.astype(np.int32)


def resample_case(
    images: list[Path],
    image_out: Path | None,
    segmentations: list[Path],
    seg_out: list[Path],
    plans_file: str,
    configuration: str,
) -> None:
    """Resample one case: its channels into ``image_out`` (None: leave them) and its label-like files
    (``segmentations``) into the matching ``seg_out`` folders. Takes plain paths so that worker
    processes can run it."""
    import SimpleITK as sitk

    reference = read_image(images[0]) if image_out is not None else read_image_information(images[0])
    spacing = np.array(reference.GetSpacing()[::-1], dtype=float)
    new_spacing = np.array(target_spacing(Path(plans_file), configuration))
    if image_out is not None:
        channels = [reference, *(read_image(path) for path in images[1:])]
        data = np.stack([sitk.GetArrayFromImage(c).astype(np.float32) for c in channels])
        resampled = _resample(data, spacing, plans_file, configuration, is_seg=False)
        for channel, path in enumerate(images):
            _write(resampled[channel].astype(np.float32), reference, new_spacing, image_out / path.name)
    for source, target in zip(segmentations, seg_out, strict=True):
        labels = sitk.GetArrayFromImage(read_image(source))[None]
        resampled = _resample(labels, spacing, plans_file, configuration, is_seg=True)[0]
        _write(_label_dtype(resampled), reference, new_spacing, target / source.name)


def _original(folder: Path) -> Path:
    return folder.with_name(folder.name + ORIGINAL_SUFFIX)


def _staging(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}.resampling")


def _exists(folder: Path) -> bool:
    return folder.exists() or _original(folder).exists()


def _folder_sets(root: Path) -> list[list[Path]]:
    """[images, labels, (addTr)] of each split present, as is or already moved to ``*_original``."""
    sets = []
    for split, names in SPLITS.items():
        folders = [root / name for name in names]
        if split == "pool" and _exists(root / FREE_FOLDER):
            folders.append(root / FREE_FOLDER)
        if _exists(folders[0]):
            sets.append(folders)
    return sets


def is_resampled(root: Path) -> bool:
    sets = _folder_sets(Path(root))
    return bool(sets) and all(f.exists() and _original(f).exists() for folders in sets for f in folders)


Job = tuple[list[Path], "Path | None", list[Path], list[Path]]


def _jobs(folders: list[Path], file_ending: str) -> list[Job]:
    """Cases still to write for one split whose originals are in ``*_original``."""
    missing = [f for f in folders if not f.exists()]
    for folder in missing:
        shutil.rmtree(_staging(folder), ignore_errors=True)
        _staging(folder).mkdir()
    images = folders[0]
    image_out = _staging(images) if images in missing else None
    jobs: list[Job] = []
    for case, channels in sorted(list_channel_files(_original(images), file_ending)[0].items()):
        sources = [_original(f) / f"{case}{file_ending}" for f in folders[1:] if f in missing]
        targets = [_staging(f) for f in folders[1:] if f in missing]
        kept = [(s, t) for s, t in zip(sources, targets, strict=True) if s.exists()]
        if image_out is not None or kept:
            files = [channels[c] for c in sorted(channels)]
            jobs.append((files, image_out, [s for s, _ in kept], [t for _, t in kept]))
    return jobs


def _run(
    jobs: list[Job],
    plans_file: str,
    configuration: str,
    num_processes: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    if num_processes <= 1 or len(jobs) <= 1:
        for done, job in enumerate(jobs, start=1):
            resample_case(*job, plans_file, configuration)
            if progress is not None:
                progress(done, len(jobs))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=num_processes, mp_context=context) as pool:
        futures = [pool.submit(resample_case, *job, plans_file, configuration) for job in jobs]
        for done, future in enumerate(as_completed(futures), start=1):
            future.result()
            if progress is not None:
                progress(done, len(jobs))


def resample_dataset(
    root: Path,
    plans_file: Path,
    configuration: str = "3d_fullres",
    num_processes: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> ResampleResult:
    """Resample every case of the raw dataset at ``root`` to ``configuration``'s spacing in
    ``plans_file``; originals stay in ``*_original`` folders. Idempotent: a finished dataset is left
    alone, an interrupted one is completed."""
    from nnactive_core.datasets.validate import check_dataset

    root, plans_file = Path(root), Path(plans_file)
    if not plans_file.is_file():
        raise DatasetError(f"{plans_file}: missing; plan the dataset first (`nnactive data plan {root}`)")
    spacing = target_spacing(plans_file, configuration)
    dataset_json = load_dataset_json(root)
    file_ending = dataset_json.get("file_ending", "")
    if file_ending not in SITK_ENDINGS:
        raise DatasetError(
            f"{root / DATASET_JSON}: resampling supports file endings {', '.join(SITK_ENDINGS)}, "
            f"not {file_ending!r}"
        )
    sets = _folder_sets(root)
    recorded = dataset_json.get(RECORD_KEY)
    if recorded is not None and recorded.get("configuration") != configuration:
        raise DatasetError(
            f"{root / DATASET_JSON}: already resampled for {recorded.get('configuration')!r}; "
            f"resampling again for {configuration!r} would resample resampled data"
        )
    if not any(_original(f).exists() for folders in sets for f in folders):
        check_dataset(root, level="full")
    jobs: list[Job] = []
    for folders in sets:
        for folder in folders:
            if folder.exists() and not _original(folder).exists():
                os.rename(folder, _original(folder))
        if not all(f.exists() for f in folders):
            jobs.extend(_jobs(folders, file_ending))
    _run(jobs, str(plans_file), configuration, num_processes, progress)
    for folders in sets:
        for folder in folders:
            if not folder.exists():
                os.rename(_staging(folder), folder)
    record = {"configuration": configuration, "spacing": list(spacing), "plans": plans_file.name}
    if recorded != record:
        atomic_write_json(root / DATASET_JSON, {**dataset_json, RECORD_KEY: record})
    return ResampleResult(spacing=spacing, cases=len(jobs))
