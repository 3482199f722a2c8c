"""The ``nnunet-raw`` adapter: an nnU-Net v2 raw dataset folder as the AL pool (``imagesTr`` /
``labelsTr``), the held-out validation set (``imagesVal`` / ``labelsVal``, made by ``nnactive data
split``), the ground-truth oracle and the optional cost-free layer (``addTr``).

Images are read with SimpleITK (imported inside functions, since this module loads with the plugin
registry on every command); arrays come back in (z, y, x) order."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from nnactive_core.datasets.api import DatasetAdapter, label_values_without_ignore

DATASET_JSON = "dataset.json"
SPLITS = {"pool": ("imagesTr", "labelsTr"), "validation": ("imagesVal", "labelsVal")}
FREE_FOLDER = "addTr"
"""Value of the cost-free layer where nothing comes for free."""
SUPPORTED_FILE_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".mha", ".gipl", ".tif", ".tiff", ".png", ".bmp")
"""File endings nnU-Net's readers accept, all of which SimpleITK reads too."""
VALIDATION_LEVELS = ("none", "structure", "headers", "full")


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
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetFileError(path, "missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetFileError(path, f"unreadable: {error}") from None
    if not isinstance(payload, dict):
        raise DatasetFileError(path, "not a JSON object")
    return payload


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


class NnunetRawDataset:
    """An nnU-Net v2 raw dataset folder satisfying :class:`nnactive_core.datasets.api.Dataset`.

    Nothing is cached except image shapes: ``read_labels`` reads the file each time, so memory stays at
    one label map."""

    def __init__(self, root: Path, dataset_json: dict | None = None):
        self.root = Path(root)
        self.name = self.root.name
        self.dataset_json = load_dataset_json(self.root) if dataset_json is None else dataset_json
        self.file_ending: str = self.dataset_json["file_ending"]
        self.labels = label_values_without_ignore(self.dataset_json["labels"])
        self.ignore_label = ignore_label_of(self.dataset_json["labels"])
        self.background = int(self.labels.get("background", 0))
        self.channels = len(self.dataset_json["channel_names"])
        self._cases = {
            split: sorted(list_channel_files(self.root / images, self.file_ending)[0])
            for split, (images, _) in SPLITS.items()
        }
        self._split_of = {case: split for split, cases in self._cases.items() for case in cases}
        self._shapes: dict[str, tuple[int, int, int]] = {}

    def __repr__(self) -> str:
        return f"NnunetRawDataset({str(self.root)!r})"

    def pool_cases(self) -> list[str]:
        return list(self._cases["pool"])

    def validation_cases(self) -> list[str]:
        return list(self._cases["validation"])

    def _folders(self, split: str) -> tuple[Path, Path]:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        images, labels = SPLITS[split]
        return self.root / images, self.root / labels

    def _check_case(self, case: str, split: str) -> None:
        if self._split_of.get(case) != split:
            raise KeyError(f"{self.root}: no {split} case {case!r}")

    def image_files(self, case: str, split: str = "pool") -> list[Path]:
        images, _ = self._folders(split)
        self._check_case(case, split)
        return [images / f"{case}_{channel:04d}{self.file_ending}" for channel in range(self.channels)]

    def label_file(self, case: str, split: str = "pool") -> Path:
        _, labels = self._folders(split)
        self._check_case(case, split)
        return labels / f"{case}{self.file_ending}"

    def read_labels(self, case: str, split: str = "pool") -> np.ndarray:
        import SimpleITK as sitk

        path = self.label_file(case, split)
        return as_label_array(sitk.GetArrayFromImage(read_image(path)), path)

    def free_label_file(self, case: str) -> Path:
        return self.root / FREE_FOLDER / f"{case}{self.file_ending}"

    def read_free_labels(self, case: str) -> np.ndarray | None:
        import SimpleITK as sitk

        self._check_case(case, "pool")
        path = self.free_label_file(case)
        if not path.exists():
            return None
        return as_label_array(sitk.GetArrayFromImage(read_image(path)), path)

    def shape(self, case: str) -> tuple[int, int, int]:
        if case not in self._shapes:
            split = self._split_of.get(case)
            if split is None:
                raise KeyError(f"{self.root}: no case {case!r}")
            size = read_image_information(self.label_file(case, split)).GetSize()
            self._shapes[case] = tuple(int(s) for s in reversed(size))  # type: ignore[assignment]
        return self._shapes[case]

    def case_of_file(self, file: str) -> str:
        if "/" in file or "\\" in file or not file.endswith(self.file_ending):
            raise ValueError(f"{file!r} is not a label file name of {self.name} (<case>{self.file_ending})")
        case = file[: -len(self.file_ending)]
        if case not in self._split_of:
            raise KeyError(f"{file!r}: no such case in {self.root}")
        return case


def as_label_array(array: np.ndarray, path: Path) -> np.ndarray:
    """Labels as integers; float label files are accepted only when every value is whole."""
    if np.issubdtype(array.dtype, np.integer):
        return array
    if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
        raise DatasetFileError(path, "label values are not whole numbers")
    return array.astype(np.int16 if array.max(initial=0) > 255 or array.min(initial=0) < 0 else np.uint8)


def open_nnunet_raw(root: Path, validation: str = "headers") -> NnunetRawDataset:
    """Open a raw dataset after validating it at ``validation`` level (see
    :func:`nnactive_core.datasets.validate.validate_dataset`); problems raise one
    :class:`nnactive_core.datasets.validate.DatasetValidationError` listing them all."""
    from nnactive_core.datasets.validate import check_dataset

    if validation not in VALIDATION_LEVELS:
        raise ValueError(f"validation must be one of {', '.join(VALIDATION_LEVELS)}, got {validation!r}")
    root = Path(root)
    if validation != "none":
        check_dataset(root, level=validation)
    return NnunetRawDataset(root)


class NnunetRawAdapter(DatasetAdapter):
    name = "nnunet-raw"
    description = "An nnU-Net v2 raw dataset folder (imagesTr/labelsTr pool, imagesVal/labelsVal held out)."

    def open(self, location: Path, validation: str = "headers", **options) -> NnunetRawDataset:
        if options:
            raise TypeError(f"dataset adapter {self.name!r}: unknown option(s) {', '.join(sorted(options))}")
        return open_nnunet_raw(Path(location), validation=validation)
