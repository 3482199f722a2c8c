"""Planning sees only bought labels: two CT-like base datasets with the same images and the same ground
truth inside the starting budget, but other ground truth outside it, set up with real nnU-Net planning.
The bases' fingerprints (full labels) differ; the experiments' normalisation statistics do not."""

from __future__ import annotations

import json

import numpy as np
import pytest
from nnunet import ct_dataset as ct

from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import Roots
from nnactive_core.experiment.setup import setup_experiment
from nnactive_core.nnunet.fingerprint import foreground_intensity_statistics
from nnactive_core.nnunet.planning import INTENSITY_KEY
from nnactive_core.nnunet.plans import load_plans
from nnactive_core.patches.patch import load_loop, loop_file_name

pytestmark = pytest.mark.e2e

BASES = ("Dataset901_CtA", "Dataset902_CtB")


def _config(dataset: str) -> ExperimentConfig:
    return ExperimentConfig(
        dataset=dataset,
        strategy="random",
        starting_budget="random",
        starting_budget_size=4,
        patch_size=(8, 8, 8),
        query_size=4,
        query_steps=2,
        folds=2,
        training_profile="tiny",
        val_mirroring=False,
        device="cpu",
    )


def _fingerprint(roots: Roots, dataset: str) -> dict:
    return json.loads((roots.base_preprocessed(dataset) / "dataset_fingerprint.json").read_text())


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """Base A, its experiment; then base B (A with the body outside A's starting budget relabelled as
    organ) and the same experiment on it."""
    root = tmp_path_factory.mktemp("ct_planning")
    roots = Roots(raw=root / "raw", data=root / "data", results=root / "results")
    first, second = BASES
    base = ct.make_raw_dataset(roots.base_raw(first), n_train=6, n_val=2)
    experiment_a = setup_experiment(_config(first), roots)
    patches = load_loop(experiment_a.raw / loop_file_name(0))

    other = roots.base_raw(second)
    other.mkdir(parents=True)
    for folder in ("imagesTr", "imagesVal", "labelsVal"):
        (other / folder).symlink_to(base / folder, target_is_directory=True)
    (other / "dataset.json").write_text((base / "dataset.json").read_text())
    for label_file in sorted((base / "labelsTr").glob("*.nii.gz")):
        truth = ct.read_image(label_file)
        inside = np.zeros(truth.shape, dtype=bool)
        for patch in patches:
            if patch.file == label_file.name:
                inside[patch.slices] = True
        image = ct.read_image(base / "imagesTr" / label_file.name.replace(".nii.gz", "_0000.nii.gz"))
        changed = np.where(~inside & (truth == 0) & (image > -500), 1, truth).astype(np.uint8)
        ct.write_image(changed, other / "labelsTr" / label_file.name)
    experiment_b = setup_experiment(_config(second), roots)
    return roots, experiment_a, experiment_b, patches


def test_the_starting_budgets_are_the_same_patches(planned):
    _, experiment_a, experiment_b, patches = planned
    assert load_loop(experiment_b.raw / loop_file_name(0)) == patches
    assert {p.file for p in patches} == {p.file for p in load_loop(experiment_a.raw / loop_file_name(0))}


def test_base_fingerprints_see_the_full_labels(planned):
    roots, *_ = planned
    first, second = (_fingerprint(roots, name)[INTENSITY_KEY]["0"] for name in BASES)
    assert second["mean"] < first["mean"] - 50, "B's extra organ is body tissue at -100 HU"
    # our statistics reproduce nnU-Net's extractor on the same (fully labelled) data
    ours = foreground_intensity_statistics(roots.base_raw(BASES[0])).per_channel["0"]
    assert ours == pytest.approx(first, rel=1e-5)


def test_experiment_normalisation_statistics_ignore_unbought_labels(planned):
    roots, experiment_a, experiment_b, _ = planned
    plans_a = load_plans(experiment_a.nnunet, experiment_a.folder)
    plans_b = load_plans(experiment_b.nnunet, experiment_b.folder)
    assert plans_a["configurations"]["3d_fullres"]["normalization_schemes"] == ["CTNormalization"]
    assert plans_a[INTENSITY_KEY] == plans_b[INTENSITY_KEY]
    assert plans_a[INTENSITY_KEY] != _fingerprint(roots, BASES[0])[INTENSITY_KEY]
    fingerprint = json.loads((experiment_a.preprocessed / "dataset_fingerprint.json").read_text())
    assert fingerprint[INTENSITY_KEY] == plans_a[INTENSITY_KEY]
    assert fingerprint["spacings"] == _fingerprint(roots, BASES[0])["spacings"]
