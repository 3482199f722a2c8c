"""``nnactive annotate export``: a folder for annotators with, per case that a loop queried, the image
channels, the current partial labels and the mask of the region to annotate, all in the case's
geometry, plus ``manifest.json`` and ``INSTRUCTIONS.txt``.

The export is built in a hidden folder beside the target and moved into place, so a reader never sees a
half-written export. Exporting again into the same export (same experiment and loop) rewrites its
files identically and keeps ``labels/``, where annotators may already have saved their work."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from nnactive_core.annotate.context import AnnotationError, ExperimentHandle
from nnactive_core.annotate.geometry import Geometry, region_mask, write_image
from nnactive_core.annotate.instructions import INSTRUCTIONS_FILE, instructions_text
from nnactive_core.annotate.manifest import (
    FILE_FORMATS,
    IMAGES,
    LABELS,
    MANIFEST_FILE,
    MASKS,
    PARTIAL,
    ExportCase,
    ExportManifest,
    is_export,
    read_manifest,
)
from nnactive_core.io import current_umask
from nnactive_core.patches.patch import loop_file_name

REPLACED = (IMAGES, PARTIAL, MASKS, INSTRUCTIONS_FILE, MANIFEST_FILE)
"""What an export owns, manifest last: ``labels/`` belongs to the annotators."""


def _copy_image(source: Path, geometry: Geometry, target: Path) -> None:
    """The channel file itself when the format matches, else converted; the geometry is the case's."""
    import SimpleITK as sitk

    from nnactive_core.datasets.raw_format import read_image

    if any(source.name.endswith(e) and target.name.endswith(e) for e in FILE_FORMATS.values()):
        shutil.copyfile(source, target)
        return
    write_image(sitk.GetArrayFromImage(read_image(source)), geometry, target)


def _write_case(handle: ExperimentHandle, case: str, patches, staging: Path, ending: str) -> ExportCase:
    geometry = handle.geometry(case)
    for patch in patches:
        if not patch.fits_in(geometry.shape):
            raise AnnotationError(
                f"loop file patch {patch.to_json()} does not fit in case {case!r} of size {geometry.shape}"
            )
    images = []
    for channel, source in enumerate(handle.dataset.image_files(case)):
        relative = f"{IMAGES}/{case}_{channel:04d}{ending}"
        _copy_image(Path(source), geometry, staging / relative)
        images.append(relative)
    partial = handle.partial_labels(case, geometry)
    if partial.shape != geometry.shape:
        raise AnnotationError(
            f"{handle.layout.labels / handle.label_file_name(case)}: size {partial.shape} differs from the "
            f"case's {geometry.shape}"
        )
    partial_path = f"{PARTIAL}/{case}{ending}"
    write_image(partial, geometry, staging / partial_path)
    mask_path = f"{MASKS}/{case}{ending}"
    write_image(region_mask(geometry.shape, patches).astype(np.uint8), geometry, staging / mask_path)
    return ExportCase(
        case=case,
        label_file=handle.label_file_name(case),
        images=images,
        partial=partial_path,
        mask=mask_path,
        labels=f"{LABELS}/{case}{ending}",
        geometry=geometry,
        patches=patches,
    )


def _check_target(handle: ExperimentHandle, output: Path, loop: int) -> bool:
    """True when ``output`` already holds this export (to be refreshed); raises when it holds anything
    else."""
    if not output.exists():
        return False
    if not output.is_dir():
        raise AnnotationError(f"{output}: exists and is not a folder")
    if not any(output.iterdir()):
        return False
    if not is_export(output):
        raise AnnotationError(f"{output}: folder is not empty and holds no annotation export; choose another")
    existing = read_manifest(output)
    if (existing.experiment, existing.loop) != (handle.name, loop):
        raise AnnotationError(
            f"{output}: holds the export of {existing.experiment} loop {existing.loop}, not "
            f"{handle.name} loop {loop}; choose another folder"
        )
    return True


def _share(folder: Path) -> None:
    """Permissions by the umask, as for any file the user creates: temporary files and folders are
    private, but an export is for annotators who may be other users."""
    umask = current_umask()
    folder.chmod(0o777 & ~umask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def _move_into(staging: Path, output: Path) -> None:
    for name in REPLACED:
        source, target = staging / name, output / name
        if source.is_dir() and target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=output))
            os.replace(target, old / name)
            os.replace(source, target)
            shutil.rmtree(old)
        else:
            os.replace(source, target)
    (output / LABELS).mkdir(exist_ok=True)


def export_loop(
    handle: ExperimentHandle, output: Path, loop: int | None = None, file_format: str = "nifti"
) -> ExportManifest:
    """Export loop ``loop``'s new patches (default: the newest loop file) to ``output``."""
    if file_format not in FILE_FORMATS:
        raise AnnotationError(f"format must be one of {', '.join(FILE_FORMATS)}, got {file_format!r}")
    loop = handle.newest_loop() if loop is None else loop
    patches = handle.loop_patches(loop)
    if not patches:
        raise AnnotationError(f"{handle.layout.raw}: loop {loop} of {handle.name} has no patches to annotate")
    output = Path(output).absolute()
    refresh = _check_target(handle, output, loop)
    output.parent.mkdir(parents=True, exist_ok=True)
    ending = FILE_FORMATS[file_format]
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent))
    try:
        for folder in (IMAGES, PARTIAL, MASKS, LABELS):
            (staging / folder).mkdir()
        try:
            grouped = handle.patches_by_case(patches)
        except (KeyError, ValueError) as error:
            raise AnnotationError(f"{handle.layout.raw / loop_file_name(loop)}: {error}") from None
        cases = [
            _write_case(handle, case, case_patches, staging, ending) for case, case_patches in grouped.items()
        ]
        manifest = ExportManifest(
            experiment=handle.name,
            experiment_folder=handle.layout.folder,
            loop=loop,
            labels=dict(handle.dataset.labels),
            ignore=handle.dataset.ignore_label,
            file_format=file_format,
            cases=cases,
        )
        command = f"nnactive annotate import --experiment {handle.name} --input {output} --loop {loop}"
        (staging / INSTRUCTIONS_FILE).write_text(instructions_text(manifest, command))
        manifest.write(staging)
        _share(staging)
        if refresh:
            _move_into(staging, output)
        else:
            if output.exists():
                output.rmdir()
            os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest
