"""``manifest.json`` of an annotation export: which experiment and loop, the label values, and per case
its files, geometry and the patch boxes to annotate (voxels and world coordinates).

The import reads the manifest back to know which files to expect; it never trusts the manifest's
geometry or patches over the experiment's own (it checks that they still agree)."""

from __future__ import annotations

from pathlib import Path

import attrs

from nnactive_core.annotate.context import AnnotationError
from nnactive_core.annotate.geometry import Geometry
from nnactive_core.io import JsonFileError, atomic_write_json, read_json
from nnactive_core.patches.patch import Patch

MANIFEST_FILE = "manifest.json"
KIND = "nnactive-annotation-export"
FORMAT_VERSION = 1
FILE_FORMATS = {"nifti": ".nii.gz", "nrrd": ".nrrd"}
LABEL_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".mha", ".nhdr")
"""What annotators may save: each viewer has its favourite (ITK-SNAP and MITK NIfTI, Slicer NRRD)."""
IMAGES, PARTIAL, MASKS, LABELS = "images", "partial", "masks", "labels"


@attrs.frozen(kw_only=True)
class ExportCase:
    case: str
    label_file: str
    """The case's label file name as loop files name it (``<case><file_ending>``)."""
    images: tuple[str, ...] = attrs.field(converter=tuple)
    """Paths relative to the export folder, one per channel."""
    partial: str
    mask: str
    labels: str
    """Where the annotator saves the result."""
    geometry: Geometry
    patches: tuple[Patch, ...] = attrs.field(converter=tuple)

    def to_json(self) -> dict:
        return {
            "case": self.case,
            "label_file": self.label_file,
            "images": list(self.images),
            "partial": self.partial,
            "mask": self.mask,
            "labels": self.labels,
            "geometry": self.geometry.to_json(),
            "patches": [self.geometry.box_record(patch) for patch in self.patches],
        }

    @classmethod
    def from_json(cls, record: dict) -> ExportCase:
        geometry = Geometry(**record["geometry"])
        return cls(
            case=record["case"],
            label_file=record["label_file"],
            images=record["images"],
            partial=record["partial"],
            mask=record["mask"],
            labels=record["labels"],
            geometry=geometry,
            patches=[
                Patch(file=record["label_file"], start=box["start"], size=box["size"])
                for box in record["patches"]
            ],
        )


@attrs.frozen(kw_only=True)
class ExportManifest:
    experiment: str
    experiment_folder: str
    loop: int
    labels: dict[str, int]
    """Label name -> value, without ``ignore``."""
    ignore: int
    file_format: str
    cases: tuple[ExportCase, ...] = attrs.field(converter=tuple)

    def case(self, name: str) -> ExportCase:
        for entry in self.cases:
            if entry.case == name:
                return entry
        raise KeyError(name)

    def to_json(self) -> dict:
        return {
            "kind": KIND,
            "format_version": FORMAT_VERSION,
            "experiment": self.experiment,
            "experiment_folder": self.experiment_folder,
            "loop": self.loop,
            "labels": dict(self.labels),
            "ignore": self.ignore,
            "file_format": self.file_format,
            "coordinates": "patch start/size/stop are voxel indices (z, y, x) of the case images, "
            "stop exclusive; physical points are world (x, y, z) in the images' units",
            "cases": [entry.to_json() for entry in self.cases],
        }

    def write(self, folder: Path) -> Path:
        path = Path(folder) / MANIFEST_FILE
        atomic_write_json(path, self.to_json())
        return path


def is_export(folder: Path) -> bool:
    path = Path(folder) / MANIFEST_FILE
    try:
        return read_json(path, expect=dict).get("kind") == KIND
    except JsonFileError:
        return False


def read_manifest(folder: Path) -> ExportManifest:
    """The export manifest in ``folder``; errors name the file."""
    path = Path(folder) / MANIFEST_FILE
    try:
        payload = read_json(
            path, expect=dict, missing="missing; pass the folder written by `nnactive annotate export`"
        )
    except JsonFileError as error:
        raise AnnotationError(str(error)) from None
    if payload.get("kind") != KIND:
        raise AnnotationError(f"{path}: not an nnactive annotation export manifest")
    if payload.get("format_version") != FORMAT_VERSION:
        raise AnnotationError(
            f"{path}: format_version {payload.get('format_version')!r}; this nnactive reads {FORMAT_VERSION}"
        )
    try:
        return ExportManifest(
            experiment=str(payload["experiment"]),
            experiment_folder=str(payload["experiment_folder"]),
            loop=int(payload["loop"]),
            labels={str(k): int(v) for k, v in payload["labels"].items()},
            ignore=int(payload["ignore"]),
            file_format=str(payload["file_format"]),
            cases=[ExportCase.from_json(record) for record in payload["cases"]],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise AnnotationError(f"{path}: damaged manifest ({type(error).__name__}: {error})") from None
