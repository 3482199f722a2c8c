"""``INSTRUCTIONS.txt`` of an annotation export: what annotators label, with which values, and how to
save it so that ``nnactive annotate import`` accepts it."""

from __future__ import annotations

from nnactive_core.annotate.manifest import LABEL_ENDINGS, LABELS, ExportManifest

INSTRUCTIONS_FILE = "INSTRUCTIONS.txt"


def instructions_text(manifest: ExportManifest, import_command: str) -> str:
    ending = ".nii.gz" if manifest.file_format == "nifti" else ".nrrd"
    values = "\n".join(
        f"    {value:>4}  {name}" for name, value in sorted(manifest.labels.items(), key=lambda kv: kv[1])
    )
    cases = "\n".join(
        f"    {entry.case}: {len(entry.patches)} box(es); load {', '.join(entry.images)}, "
        f"{entry.partial} and {entry.mask}; save {LABELS}/{entry.case}{ending}"
        for entry in manifest.cases
    )
    return f"""Annotation task: experiment {manifest.experiment}, loop {manifest.loop}

For every case below, label every voxel inside the region marked 1 in masks/<case>, and nothing else.

1. Open the case's image(s) from images/ (one file per channel) in your viewer (ITK-SNAP, 3D Slicer,
   MITK). Load partial/<case> as the segmentation: it holds what is labelled already; the value
   {manifest.ignore} means "not annotated". Load masks/<case> as a second layer: 1 = the region to
   annotate now (one or more boxes; manifest.json lists them in voxels and world coordinates).
2. Inside the region, give EVERY voxel one of these values (background too; {manifest.ignore} is not allowed
   there):
{values}
3. Keep everything outside the region unchanged (or set it to {manifest.ignore}). Labels drawn outside the
   region are rejected, so that only the queried boxes count as annotated.
4. Keep the geometry: do not crop, resample or reorient. Save the segmentation of each case as
   {LABELS}/<case>{ending} in this folder ({", ".join(LABEL_ENDINGS)} are accepted).

Cases:
{cases}

When all cases are saved, the experiment's operator runs:
    {import_command}
It checks every file and lists every problem (one line each); nothing is imported until all files pass.
Then `nnactive run` continues the experiment.
"""
