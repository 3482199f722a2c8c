"""A small fabricated experiment for the annotation tests (``from annotate.fake_experiment import ...``:
``tests`` is on pytest's pythonpath).

A real nnU-Net raw base dataset (3 tiny pool cases with 2 channels and one held-out case, non-trivial
spacing, origin and a rotated direction) and an experiment written with the runner's own config,
layout, state, loop-file and oracle code: ``loop_000.json`` labelled by the oracle into ``labelsTr``,
``loop_001.json`` queried and waiting at the annotate step of loop 0."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np
import SimpleITK as sitk

from nnactive_core.annotate.manifest import read_manifest
from nnactive_core.datasets.nnunet_raw import NnunetRawDataset
from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import ExperimentLayout, Roots, experiment_folder_name
from nnactive_core.experiment.oracle import write_partial_labels
from nnactive_core.experiment.setup import write_raw_folder
from nnactive_core.experiment.state import ANNOTATE, State, save_state
from nnactive_core.patches.patch import Patch, save_loop

BASE = "Dataset123_Tiny"
LABELS = {"background": 0, "liver": 1, "tumour": 2}
IGNORE = 3
SHAPES = {"tiny_000": (6, 8, 9), "tiny_001": (7, 8, 10), "tiny_002": (6, 9, 8)}
VALIDATION = {"tiny_100": (6, 8, 8)}
SPACING = (0.7, 1.3, 2.5)
ORIGIN = (10.5, -20.25, 3.0)
DIRECTION = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
"""90 degrees about z: world and voxel axes differ, as in many scanners' files."""


def patch(case: str, start, size=(2, 3, 3)) -> Patch:
    return Patch(file=f"{case}.nii.gz", start=start, size=size)


LOOP0 = [patch("tiny_000", (0, 0, 0)), patch("tiny_001", (1, 1, 1))]
LOOP1 = [patch("tiny_000", (3, 4, 4)), patch("tiny_000", (0, 4, 5)), patch("tiny_002", (2, 2, 2), (3, 3, 3))]


def write_image(array: np.ndarray, path: Path, geometry_of: sitk.Image | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array)
    if geometry_of is None:
        image.SetSpacing(SPACING)
        image.SetOrigin(ORIGIN)
        image.SetDirection(DIRECTION)
    else:
        image.CopyInformation(geometry_of)
    sitk.WriteImage(image, str(path), True)


def write_base(root: Path) -> Path:
    for split, cases in (("Tr", SHAPES), ("Val", VALIDATION)):
        for index, (case, shape) in enumerate(cases.items()):
            rng = np.random.default_rng(index + (100 if split == "Val" else 0))
            for channel in range(2):
                image = rng.normal(size=shape).astype(np.float32)
                write_image(image, root / f"images{split}" / f"{case}_{channel:04d}.nii.gz")
            labels = rng.integers(0, 3, size=shape).astype(np.uint8)
            write_image(labels, root / f"labels{split}" / f"{case}.nii.gz")
    dataset_json = {
        "channel_names": {"0": "T1", "1": "T2"},
        "labels": LABELS,
        "numTraining": len(SHAPES),
        "file_ending": ".nii.gz",
    }
    (root / "dataset.json").write_text(json.dumps(dataset_json))
    return root


@attrs.frozen(kw_only=True)
class FakeExperiment:
    roots: Roots
    config: ExperimentConfig
    layout: ExperimentLayout
    dataset: NnunetRawDataset

    def env(self) -> dict[str, str]:
        return self.roots.env()


def build_experiment(folder: Path, state: State | None = None) -> FakeExperiment:
    roots = Roots.under(folder)
    dataset = NnunetRawDataset(write_base(roots.base_raw(BASE)))
    config = ExperimentConfig(
        dataset=BASE,
        patch_size=(2, 3, 3),
        query_size=3,
        query_steps=3,
        strategy="random",
        starting_budget="random",
        starting_budget_size=2,
    )
    layout = ExperimentLayout(roots=roots, base=BASE, folder=experiment_folder_name(1, config.name()))
    layout.results.mkdir(parents=True)
    config.save(layout.results)
    save_state(layout.results, state or State(loop=0, step=ANNOTATE))
    write_raw_folder(dataset, layout)
    save_loop(layout.raw, 0, LOOP0)
    write_partial_labels(dataset, layout.labels, LOOP0)
    save_loop(layout.raw, 1, LOOP1)
    return FakeExperiment(roots=roots, config=config, layout=layout, dataset=dataset)


def fill_from_truth(export: Path, dataset, ending: str = ".nii.gz") -> dict[str, np.ndarray]:
    """What a careful annotator does: load the partial labels, paint the ground truth inside the mask,
    save ``labels/<case>``. Returns the saved arrays."""
    saved = {}
    for entry in read_manifest(export).cases:
        partial_image = sitk.ReadImage(str(export / entry.partial))
        partial = sitk.GetArrayFromImage(partial_image)
        mask = sitk.GetArrayFromImage(sitk.ReadImage(str(export / entry.mask))).astype(bool)
        labels = partial.copy()
        labels[mask] = dataset.read_labels(entry.case)[mask]
        write_image(labels, export / "labels" / f"{entry.case}{ending}", geometry_of=partial_image)
        saved[entry.case] = labels
    return saved
