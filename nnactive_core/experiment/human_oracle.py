"""The human-mode oracle: annotators' labels as the loop runner consumes them.

A valid import of loop L lives in ``<results>/annotations/loop_LLL/``: ``<case>.nii.gz`` per case that
loop L queried (the imported labels inside L's patches, ``ignore`` elsewhere) and ``manifest.json``
(which patches it answers). :func:`imported_labels` gives the runner those labels, or None while no
import answers the loop file as it is now. :class:`ImportedOracle` stands in for the ground-truth
oracle so that the oracle's partial-label writer builds the maps from annotators' labels."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnactive_core.experiment.oracle import label_dtype
from nnactive_core.io import JsonFileError, read_json
from nnactive_core.patches.patch import Patch, load_loop, loop_file_name, loop_files

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset
    from nnactive_core.experiment.layout import ExperimentLayout

STORED_MANIFEST = "manifest.json"
STORED_ENDING = ".nii.gz"
KIND = "nnactive-imported-labels"


class MissingImportError(RuntimeError):
    """A loop's patches have no valid import of annotators' labels."""


def patch_records(patches: Iterable[Patch]) -> list[dict]:
    """Loop-file records in a fixed order, to compare an import with the loop file."""
    return sorted((p.to_json() for p in patches), key=lambda r: (r["file"], r["coords"], r["size"]))


def _read_stored(folder: Path) -> dict | None:
    try:
        payload = read_json(folder / STORED_MANIFEST)
    except JsonFileError:
        return None
    if not isinstance(payload, dict) or payload.get("kind") != KIND:
        return None
    return payload


def import_instructions(layout: ExperimentLayout, loop: int) -> str:
    """What the user does when loop ``loop`` waits for annotators (for the runner's stop message)."""
    name = layout.name
    return (
        f"loop {loop} of {name} waits for annotators: run `nnactive annotate export --experiment {name} "
        f"--loop {loop} --output DIR`, have DIR/labels filled (DIR/INSTRUCTIONS.txt says how), then "
        f"`nnactive annotate import --experiment {name} --input DIR`, and `nnactive run` again"
    )


def imported_labels(layout: ExperimentLayout, loop: int) -> Callable[[str], np.ndarray] | None:
    """Per case id, the label map (z, y, x ints) annotators gave for loop file ``loop``'s patches; None
    when no import exists, or the one stored no longer matches the loop file (it was re-queried)."""
    folder = layout.annotations(loop)
    stored = _read_stored(folder)
    loop_path = Path(layout.raw) / loop_file_name(loop)
    if stored is None or stored.get("loop") != loop or not loop_path.is_file():
        return None
    try:
        current = patch_records(load_loop(loop_path))
    except ValueError:
        return None
    cases = stored.get("cases")
    if stored.get("patches") != current or not isinstance(cases, dict):
        return None
    files = {case: folder / str(entry.get("file", "")) for case, entry in cases.items()}
    if not all(path.is_file() for path in files.values()):
        return None

    def read(case: str) -> np.ndarray:
        import SimpleITK as sitk

        from nnactive_core.datasets.raw_format import as_label_array, read_image

        if case not in files:
            raise KeyError(f"{folder}: the import of loop {loop} has no labels for case {case!r}")
        path = files[case]
        return as_label_array(sitk.GetArrayFromImage(read_image(path)), path)

    return read


class ImportedOracle:
    """The base dataset with its pool ground truth replaced by the imports of loops ``0 .. up_to``.

    ``read_labels(case)`` holds, inside every patch of those loops on ``case``, the labels imported for
    that patch's loop (later loops win where patches overlap) and ``ignore`` elsewhere; everything else
    (images, geometry, free labels, validation ground truth) comes from the base dataset. Loops named in
    ``oracle_loops`` (such as a starting budget labelled from existing ground truth) keep the base
    dataset's labels."""

    def __init__(
        self, dataset: Dataset, layout: ExperimentLayout, up_to: int, oracle_loops: Sequence[int] = ()
    ):
        self._dataset = dataset
        self._loops = []
        for loop, path in loop_files(layout.raw):
            if loop > up_to:
                continue
            grouped: dict[str, list[Patch]] = {}
            for patch in load_loop(path):
                grouped.setdefault(dataset.case_of_file(patch.file), []).append(patch)
            source = None if loop in oracle_loops else imported_labels(layout, loop)
            self._loops.append((loop, grouped, loop in oracle_loops, source))
        self._layout = layout
        self._folder = layout.annotations(0).parent

    def __getattr__(self, name: str):
        return getattr(self._dataset, name)

    def read_labels(self, case: str, split: str = "pool") -> np.ndarray:
        if split != "pool":
            return self._dataset.read_labels(case, split)
        ignore = self._dataset.ignore_label
        out = np.full(self._dataset.shape(case), ignore, dtype=label_dtype(ignore))
        for loop, grouped, from_oracle, source in self._loops:
            if case not in grouped:
                continue
            if from_oracle:
                labels = self._dataset.read_labels(case)
            elif source is None:
                raise MissingImportError(
                    f"loop {loop} queried case {case!r} but {self._folder} holds no valid import for it; "
                    + import_instructions(self._layout, loop)
                )
            else:
                labels = source(case)
            if labels.shape != out.shape:
                raise MissingImportError(
                    f"loop {loop}: labels of case {case!r} have size {labels.shape}, the case {out.shape}"
                )
            for patch in grouped[case]:
                out[patch.slices] = labels[patch.slices]
        return out
