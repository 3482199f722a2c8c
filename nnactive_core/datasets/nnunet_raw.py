"""The ``nnunet-raw`` adapter: an nnU-Net v2 raw dataset folder as the AL pool (``imagesTr`` /
``labelsTr``), the held-out validation set (``imagesVal`` / ``labelsVal``, made by ``nnactive data
split``), the ground-truth oracle and the optional cost-free layer (``addTr``). The folder's format
and readers live in :mod:`nnactive_core.datasets.raw_format`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnactive_core.datasets.api import DatasetAdapter, label_values_without_ignore
from nnactive_core.datasets.raw_format import (
    FREE_FOLDER,
    SPLITS,
    as_label_array,
    ignore_label_of,
    list_channel_files,
    load_dataset_json,
    read_image,
    read_image_information,
)
from nnactive_core.datasets.validate import check_dataset

VALIDATION_LEVELS = ("none", "structure", "headers", "full")


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


def open_nnunet_raw(root: Path, validation: str = "headers") -> NnunetRawDataset:
    """Open a raw dataset after validating it at ``validation`` level (see
    :func:`nnactive_core.datasets.validate.validate_dataset`); problems raise one
    :class:`nnactive_core.datasets.validate.DatasetValidationError` listing them all."""
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
