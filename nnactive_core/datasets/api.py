"""What a dataset adapter provides. Cases are named by their nnU-Net case id (no channel suffix, no
file ending); patches name their case by label file name (``case_id + file_ending``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

NOT_FREE = 255
"""Value of the cost-free layer (``addTr``) where nothing is free."""


@runtime_checkable
class Dataset(Protocol):
    """A fully annotated base dataset: the AL pool, the held-out validation set and the oracle."""

    name: str
    """nnU-Net folder name, e.g. ``Dataset004_Hippocampus``."""
    root: Path
    """The nnU-Net raw dataset folder."""
    file_ending: str
    labels: Mapping[str, int]
    """Label name -> value, without ``ignore``."""
    ignore_label: int
    """The value of un-annotated voxels in partial labels: the highest label."""
    background: int

    def pool_cases(self) -> list[str]: ...

    def validation_cases(self) -> list[str]: ...

    def image_files(self, case: str, split: str = "pool") -> list[Path]:
        """One file per channel; ``split`` is ``"pool"`` or ``"validation"``."""
        ...

    def label_file(self, case: str, split: str = "pool") -> Path: ...

    def read_labels(self, case: str, split: str = "pool") -> np.ndarray:
        """Ground truth (z, y, x) as integers: the oracle."""
        ...

    def read_free_labels(self, case: str) -> np.ndarray | None:
        """The cost-free layer (``addTr``): 255 where nothing is free, a label value elsewhere; None
        when the dataset has none."""
        ...

    def shape(self, case: str) -> tuple[int, int, int]: ...

    def case_of_file(self, file: str) -> str:
        """Case id of a patch's ``file``."""
        ...


class DatasetAdapter:
    """Base class of dataset adapters registered through ``nnactive_register_dataset_adapters``."""

    name: str = ""
    description: str = ""
    generates_dataset: bool = False
    """True when ``open`` builds the dataset at ``location`` if it is missing (so setup does not ask for
    the folder first)."""

    def open(self, location: Path, **options) -> Dataset:
        """Open (or, for generated datasets, build) the dataset at ``location``. Errors name the file
        and the problem."""
        raise NotImplementedError


def label_values_without_ignore(labels: Mapping[str, int | list[int]]) -> dict[str, int]:
    """``dataset.json`` labels minus ``ignore``; region labels keep their first value."""
    result = {}
    for name, value in labels.items():
        if name == "ignore":
            continue
        result[name] = int(value[0] if isinstance(value, list | tuple) else value)
    return result
