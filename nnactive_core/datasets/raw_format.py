"""The nnU-Net v2 raw dataset format: its file and folder names, and the readers every module that
opens such a folder shares (``dataset.json``, case listings, image files and their headers, label
arrays), with errors that name the file.

Images are read with SimpleITK (imported inside functions, since this module loads with the plugin
registry on every command); arrays come back in (z, y, x) order."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from nnactive_core.datasets.api import label_values_without_ignore
from nnactive_core.io import JsonFileError, read_json

DATASET_JSON = "dataset.json"
SPLITS = {"pool": ("imagesTr", "labelsTr"), "validation": ("imagesVal", "labelsVal")}
FREE_FOLDER = "addTr"
"""The optional cost-free layer: one label file per pool case (values: ``datasets.api.NOT_FREE``)."""
SUPPORTED_FILE_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".mha", ".gipl", ".tif", ".tiff", ".png", ".bmp")
"""File endings nnU-Net's readers accept, all of which SimpleITK reads too."""


class DatasetError(ValueError):
    """A dataset that cannot be used; the message names the file."""


class DatasetFileError(DatasetError):
    """One file that cannot be used: ``path`` and ``reason``."""

    def __init__(self, path: Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def channel_pattern(file_ending: str) -> re.Pattern[str]:
    return re.compile(rf"^(?P<case>.+)_(?P<channel>\d{{4}}){re.escape(file_ending)}$")


def list_channel_files(folder: Path, file_ending: str) -> tuple[dict[str, dict[int, Path]], list[Path]]:
    """Case id -> channel index -> file of an images folder, plus the files with the dataset's ending
    that are not named ``<case>_XXXX<ending>``. Hidden files are left out (see :func:`hidden_files`)."""
    pattern = channel_pattern(file_ending)
    cases: dict[str, dict[int, Path]] = {}
    misnamed: list[Path] = []
    for path in sorted(_visible_files(folder)):
        if not path.name.endswith(file_ending):
            continue
        match = pattern.match(path.name)
        if match is None:
            misnamed.append(path)
            continue
        cases.setdefault(match["case"], {})[int(match["channel"])] = path
    return cases, misnamed


def list_case_files(folder: Path, file_ending: str) -> dict[str, Path]:
    """Case id -> file of a labels (or ``addTr``) folder."""
    return {
        path.name[: -len(file_ending)]: path
        for path in sorted(_visible_files(folder))
        if path.name.endswith(file_ending) and len(path.name) > len(file_ending)
    }


def hidden_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.startswith(".") and not p.is_dir())


def _visible_files(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        return iter(())
    return (p for p in folder.iterdir() if not p.name.startswith(".") and (p.is_file() or p.is_symlink()))


def load_dataset_json(root: Path) -> dict:
    path = Path(root) / DATASET_JSON
    try:
        return read_json(path, expect=dict)
    except JsonFileError as error:
        raise DatasetFileError(error.path, error.reason) from None


def ignore_label_of(labels: dict) -> int:
    """The declared ``ignore`` value, else one above the highest label."""
    if "ignore" in labels:
        return int(labels["ignore"])
    return max(label_values_without_ignore(labels).values()) + 1


def read_image(path: Path):
    """A SimpleITK image; errors name the file."""
    import SimpleITK as sitk

    path = Path(path)
    if path.name.endswith((".nii", ".nii.gz")):
        problem = nifti_truncation(path)
        if problem is not None:
            raise DatasetFileError(path, f"corrupt image: {problem}")
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise DatasetFileError(path, f"unreadable image: {_first_line(error)}") from None


def nifti_truncation(path: Path) -> str | None:
    """Why a NIfTI file is incomplete, or None. ITK reads a truncated NIfTI without complaint and fills
    the missing voxels with zeros, so the stream and the size the header promises are checked here."""
    import gzip
    import struct
    import zlib

    opener = gzip.open if Path(path).name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            header = handle.read(540)
            length = len(header) + sum(len(chunk) for chunk in iter(lambda: handle.read(1 << 22), b""))
    except (OSError, EOFError, zlib.error) as error:
        return f"damaged compressed stream ({error})"
    for order in "<>":
        if len(header) >= 348 and struct.unpack(f"{order}i", header[:4])[0] == 348:
            dims = struct.unpack(f"{order}8h", header[40:56])
            bits = struct.unpack(f"{order}h", header[72:74])[0]
            offset = int(struct.unpack(f"{order}f", header[108:112])[0])
            break
        if len(header) >= 540 and struct.unpack(f"{order}i", header[:4])[0] == 540:
            bits = struct.unpack(f"{order}h", header[14:16])[0]
            dims = struct.unpack(f"{order}8q", header[16:80])
            offset = struct.unpack(f"{order}q", header[168:176])[0]
            break
    else:
        return "not a NIfTI header"
    voxels = int(np.prod([max(int(d), 1) for d in dims[1 : 1 + min(max(dims[0], 0), 7)]]))
    expected = max(offset, 348) + voxels * bits // 8
    if length < expected:
        return f"truncated: {length} of {expected} bytes"
    return None


def read_image_information(path: Path):
    """A SimpleITK reader holding only the header of ``path`` (size, spacing, origin, direction)."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise DatasetFileError(path, f"unreadable image header: {_first_line(error)}") from None
    return reader


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def as_label_array(array: np.ndarray, path: Path) -> np.ndarray:
    """Labels as integers; float label files are accepted only when every value is whole."""
    if np.issubdtype(array.dtype, np.integer):
        return array
    if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
        raise DatasetFileError(path, "label values are not whole numbers")
    return array.astype(np.int16 if array.max(initial=0) > 255 or array.min(initial=0) < 0 else np.uint8)
