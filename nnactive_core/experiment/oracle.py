"""The simulated annotator: partial label maps built from the base dataset's ground truth.

Inside every annotated patch a case carries its ground truth; everywhere else the ``ignore`` label.
The cost-free layer (``addTr``: 255 = nothing free) is written over both, last. Only cases whose
patches changed are rewritten, each rebuilt from all its patches, so a rewrite is idempotent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnactive_core.datasets.api import NOT_FREE
from nnactive_core.io import atomic_write_with
from nnactive_core.patches.patch import Patch

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset


def label_dtype(ignore_label: int) -> type:
    """The smallest unsigned integer type that holds every label value up to ``ignore_label``."""
    return np.uint8 if ignore_label <= np.iinfo(np.uint8).max else np.uint16


def partial_labels(
    truth: np.ndarray,
    patches: Sequence[Patch],
    ignore_label: int,
    free: np.ndarray | None = None,
) -> np.ndarray:
    """Ground truth inside ``patches``, ``ignore_label`` elsewhere, free labels written last."""
    out = np.full(truth.shape, ignore_label, dtype=label_dtype(ignore_label))
    for patch in patches:
        if not patch.fits_in(truth.shape):
            raise ValueError(f"patch {patch} does not fit in case {patch.file!r} of shape {truth.shape}")
        out[patch.slices] = truth[patch.slices]
    if free is not None:
        if free.shape != truth.shape:
            raise ValueError(
                f"free-label layer of {patches[0].file if patches else 'a case'} has shape {free.shape}, "
                f"labels have {truth.shape}"
            )
        mask = free != NOT_FREE
        out[mask] = free[mask]
    return out


def patches_by_file(patches: Iterable[Patch]) -> dict[str, list[Patch]]:
    grouped: dict[str, list[Patch]] = defaultdict(list)
    for patch in patches:
        grouped[patch.file].append(patch)
    return dict(grouped)


def _write_like(reference: Path, array: np.ndarray, target: Path) -> None:
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(reference))
    reader.ReadImageInformation()
    image = sitk.GetImageFromArray(array)
    image.SetOrigin(reader.GetOrigin())
    image.SetSpacing(reader.GetSpacing())
    image.SetDirection(reader.GetDirection())
    suffix = "".join(Path(target).suffixes)
    atomic_write_with(target, lambda tmp: sitk.WriteImage(image, str(tmp), True), suffix=suffix)


def write_partial_labels(
    dataset: Dataset,
    folder: Path,
    annotated: Iterable[Patch],
    cases: Iterable[str] | None = None,
) -> list[str]:
    """Write the partial label maps of ``cases`` (all pool cases when None) into ``folder`` from all
    ``annotated`` patches; returns the cases written, sorted."""
    grouped = patches_by_file(annotated)
    pool = set(dataset.pool_cases())
    unknown = sorted({dataset.case_of_file(f) for f in grouped} - pool)
    if unknown:
        raise ValueError(f"patches name case(s) outside the pool of {dataset.name}: {', '.join(unknown)}")
    targets = sorted(pool if cases is None else set(cases))
    for case in targets:
        if case not in pool:
            raise ValueError(f"case {case!r} is not in the pool of {dataset.name}")
        file = case + dataset.file_ending
        labels = partial_labels(
            dataset.read_labels(case),
            grouped.get(file, []),
            dataset.ignore_label,
            dataset.read_free_labels(case),
        )
        _write_like(dataset.label_file(case), labels, Path(folder) / file)
    return targets


def changed_cases(dataset: Dataset, new_patches: Iterable[Patch]) -> list[str]:
    """Cases whose labels a loop's new patches change."""
    return sorted({dataset.case_of_file(p.file) for p in new_patches})
