"""``nnactive annotate import``: check annotators' label files against the export they answer and the
experiment, and store them for the runner only when every file passes.

Checked per file: its geometry is the case's (size, spacing, origin, direction within tolerance);
inside the region to annotate every voxel carries a declared label value (``ignore`` is not a label);
outside the region it equals the partial labels the annotator was given, or ``ignore`` (nothing may be
labelled outside the queried boxes). Checked per export: it answers this experiment and the loop file
as it is now, every case is present, no unknown or duplicate files. Every violation is reported, one
line each naming its file. The labels are staged in a hidden folder and moved into place at the end, so
a rejected import writes nothing."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import attrs
import numpy as np

from nnactive_core.annotate.context import AnnotationError, ExperimentHandle
from nnactive_core.annotate.geometry import Geometry, region_mask, write_image
from nnactive_core.annotate.manifest import LABEL_ENDINGS, LABELS, MANIFEST_FILE, read_manifest
from nnactive_core.experiment.human_oracle import (
    KIND,
    STORED_ENDING,
    STORED_MANIFEST,
    patch_records,
)
from nnactive_core.experiment.lock import ExperimentLock
from nnactive_core.experiment.oracle import label_dtype
from nnactive_core.io import atomic_write_json
from nnactive_core.patches.patch import Patch, loop_file_name


@attrs.frozen(kw_only=True)
class ImportSummary:
    loop: int
    cases: tuple[str, ...]
    folder: Path


def _label_files(
    folder: Path, cases: dict[str, list[Patch]], ending: str
) -> tuple[dict[str, Path], list[str]]:
    """Case -> the annotator's file, and the problems: unknown, duplicate or missing files."""
    problems: list[str] = []
    found: dict[str, Path] = {}
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []
    for path in entries:
        matched = next((e for e in LABEL_ENDINGS if path.name.endswith(e)), None)
        case = path.name[: -len(matched)] if matched else None
        if path.is_dir() or matched is None:
            problems.append(f"{path}: not a label file (expected <case> with {', '.join(LABEL_ENDINGS)})")
        elif case not in cases:
            problems.append(f"{path}: {case!r} is not a case of this export ({', '.join(cases)})")
        elif case in found:
            problems.append(f"{path}: second file for case {case!r} (also {found[case].name}); keep one")
        else:
            found[case] = path
    for case, patches in cases.items():
        if case not in found:
            problems.append(
                f"{folder / (case + ending)}: missing (case {case!r}, {len(patches)} box(es) to annotate)"
            )
    return found, problems


def _check_case(
    handle: ExperimentHandle, case: str, path: Path, patches: list[Patch]
) -> tuple[np.ndarray | None, list[str]]:
    """The labels to store (imported inside the region, ``ignore`` elsewhere), or None and the problems."""
    import SimpleITK as sitk

    from nnactive_core.datasets.raw_format import DatasetFileError, read_image

    dataset = handle.dataset
    try:
        image = read_image(path)
    except DatasetFileError as error:
        return None, [f"{path}: {error.reason}"]
    components = image.GetNumberOfComponentsPerPixel()
    if components != 1:
        return None, [f"{path}: {components} components per voxel; expected one label per voxel"]
    geometry = handle.geometry(case)
    problems = [f"{path}: {d}" for d in geometry.differences(Geometry.of_image(image))]
    if tuple(reversed(image.GetSize())) != geometry.shape:
        return None, problems
    array = sitk.GetArrayFromImage(image)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            return None, [*problems, f"{path}: label values are not whole numbers"]
    array = array.astype(np.int64)
    ignore = dataset.ignore_label
    region = region_mask(geometry.shape, patches)
    inside = array[region]
    unlabelled = int(np.count_nonzero(inside == ignore))
    if unlabelled:
        problems.append(
            f"{path}: {unlabelled} of {inside.size} voxel(s) inside the region are not labelled "
            f"(value {ignore} = ignore); label every voxel of the boxes, background too"
        )
    declared = set(dataset.labels.values())
    undeclared = sorted({int(v) for v in np.unique(inside)} - declared - {ignore})
    if undeclared:
        names = ", ".join(f"{n}={v}" for n, v in sorted(dataset.labels.items(), key=lambda kv: kv[1]))
        problems.append(f"{path}: label value(s) {undeclared} inside the region are not declared ({names})")
    partial = handle.partial_labels(case, geometry).astype(np.int64)
    changed = ~region & (array != partial) & (array != ignore)
    if changed.any():
        first = tuple(int(i) for i in np.argwhere(changed)[0])
        problems.append(
            f"{path}: {int(np.count_nonzero(changed))} voxel(s) outside the region to annotate differ from "
            f"the exported partial labels (first at (z, y, x) {first}); labels outside the queried "
            "boxes are not allowed, keep them unchanged"
        )
    if problems:
        return None, problems
    stored = np.full(geometry.shape, ignore, dtype=label_dtype(ignore))
    stored[region] = array[region]
    return stored, []


def _move_into_place(staging: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.replace(staging, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.replace(target, old / target.name)
    os.replace(staging, target)
    shutil.rmtree(old)


def import_labels(handle: ExperimentHandle, folder: Path, loop: int | None = None) -> ImportSummary:
    """Validate the export ``folder`` (with annotators' files in ``labels/``) and store its labels
    as loop ``loop``'s import (default: the loop the export was made for)."""
    folder = Path(folder).absolute()
    manifest = read_manifest(folder)
    manifest_path = folder / MANIFEST_FILE
    if manifest.experiment != handle.name:
        raise AnnotationError(
            f"{manifest_path}: export of experiment {manifest.experiment}, not {handle.name}"
        )
    loop = manifest.loop if loop is None else loop
    if loop != manifest.loop:
        raise AnnotationError(f"{manifest_path}: export of loop {manifest.loop}, not loop {loop}")
    with ExperimentLock(handle.layout.results):
        state = handle.state()
        if handle.labels_used(loop, state):
            raise AnnotationError(
                f"{handle.layout.results}: loop {loop}'s labels were already written (the experiment is at "
                f"loop {state.loop}, step {state.step}); an import now would not reach the experiment"
            )
        cases = handle.patches_by_case(handle.loop_patches(loop))
        exported = {entry.case: patch_records(entry.patches) for entry in manifest.cases}
        if exported != {case: patch_records(patches) for case, patches in cases.items()}:
            raise AnnotationError(
                f"{manifest_path}: the exported boxes differ from loop {loop}'s loop file "
                f"{handle.layout.raw / loop_file_name(loop)} (queried again since?); export again"
            )
        ending = ".nii.gz" if manifest.file_format == "nifti" else ".nrrd"
        found, problems = _label_files(folder / LABELS, cases, ending)
        staging = Path(
            tempfile.mkdtemp(
                prefix=f".annotations-loop_{loop:03d}.", suffix=".tmp", dir=handle.layout.results
            )
        )
        try:
            for case, path in found.items():
                stored, case_problems = _check_case(handle, case, path, cases[case])
                problems.extend(case_problems)
                if stored is not None and not problems:
                    write_image(stored, handle.geometry(case), staging / f"{case}{STORED_ENDING}")
            if problems:
                raise AnnotationError(sorted(problems))
            atomic_write_json(
                staging / STORED_MANIFEST,
                {
                    "kind": KIND,
                    "experiment": handle.name,
                    "loop": loop,
                    "source": str(folder),
                    "imported": time.time(),
                    "labels": dict(handle.dataset.labels),
                    "ignore": handle.dataset.ignore_label,
                    "patches": patch_records(p for patches in cases.values() for p in patches),
                    "cases": {
                        case: {"file": f"{case}{STORED_ENDING}", "from": str(found[case])} for case in cases
                    },
                },
            )
            _move_into_place(staging, handle.layout.annotations(loop))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return ImportSummary(loop=loop, cases=tuple(cases), folder=handle.layout.annotations(loop))
