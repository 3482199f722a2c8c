"""Foreground intensity statistics from partial labels, on a CT-like dataset (nnU-Net's own sampling
and crop; no planning run)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from nnunet import ct_dataset as ct

from nnactive_core.experiment.oracle import partial_labels
from nnactive_core.nnunet.fingerprint import NOT_BACKGROUND, foreground_intensity_statistics
from nnactive_core.patches.patch import Patch


def _organ_box(labels: np.ndarray, file: str, size: int = 8) -> Patch:
    centre = np.argwhere(labels == 1).mean(0).astype(int)
    start = [int(min(max(0, c - size // 2), s - size)) for c, s in zip(centre, labels.shape, strict=True)]
    return Patch(file=file, start=tuple(start), size=(size, size, size))


def _experiment(folder, truths: dict[str, np.ndarray], patches: dict[str, list[Patch]]):
    """An experiment-like raw dataset: the images of ``folder``, partial labels of ``truths``."""
    for case, truth in truths.items():
        partial = partial_labels(truth, patches.get(case, []), ct.IGNORE)
        ct.write_image(partial, folder / "labelsTr" / f"{case}.nii.gz")
    (folder / "dataset.json").write_text(json.dumps(ct.dataset_json(len(truths), with_ignore=True)))


@pytest.fixture
def dataset(tmp_path):
    """Four CT cases; the organ of the first two is annotated by one 8^3 patch each."""
    folder = ct.make_raw_dataset(tmp_path / "Dataset001_Ct", n_train=4)
    truths = {
        p.name[: -len(".nii.gz")]: ct.read_image(p) for p in sorted((folder / "labelsTr").glob("*.nii.gz"))
    }
    cases = sorted(truths)
    patches = {case: [_organ_box(truths[case], f"{case}.nii.gz")] for case in cases[:2]}
    _experiment(folder, truths, patches)
    return folder, truths, patches


def _annotated_foreground(folder, truths, patches) -> np.ndarray:
    values = []
    for case, truth in truths.items():
        image = ct.read_image(folder / "imagesTr" / f"{case}_0000.nii.gz")
        partial = partial_labels(truth, patches.get(case, []), ct.IGNORE)
        values.append(image[(partial > 0) & (partial != ct.IGNORE)])
    return np.concatenate(values)


def test_statistics_come_from_annotated_foreground_only(dataset):
    folder, truths, patches = dataset
    result = foreground_intensity_statistics(folder)
    expected = _annotated_foreground(folder, truths, patches)
    stats = result.per_channel["0"]
    assert set(result.per_channel) == {"0"}
    assert result.cases == tuple(sorted(patches)), "all-ignore cases contribute nothing"
    assert result.voxels == expected.size
    assert stats["mean"] == pytest.approx(expected.mean(), abs=3)
    assert stats["std"] == pytest.approx(expected.std(), rel=0.05)
    assert expected.min() <= stats["min"] and stats["max"] <= expected.max()
    # organ and lesion only: no air (-1000 HU), no body (-100 HU), which ignore covers
    assert stats["percentile_00_5"] > 0 and stats["percentile_99_5"] < 400
    assert result.source == "annotated foreground voxels"


def test_not_background_counts_ignore_as_the_published_code_does(dataset):
    folder, _, _ = dataset
    stats = foreground_intensity_statistics(folder, foreground=NOT_BACKGROUND).per_channel["0"]
    assert stats["percentile_00_5"] < -900, "un-annotated air counted as foreground"
    assert stats["mean"] < foreground_intensity_statistics(folder).per_channel["0"]["mean"] - 300


def test_unbought_labels_do_not_change_the_statistics(dataset, tmp_path):
    folder, truths, patches = dataset
    bought = foreground_intensity_statistics(folder, sorted(patches))
    # other ground truth outside the patches: the whole body becomes organ there
    changed = {}
    for case, truth in truths.items():
        other = truth.copy()
        other[truth == 0] = 1
        inside = np.zeros(truth.shape, dtype=bool)
        for patch in patches.get(case, []):
            inside[patch.slices] = True
        changed[case] = np.where(inside, truth, other)
    _experiment(folder, changed, patches)
    again = foreground_intensity_statistics(folder, sorted(patches))
    assert again.per_channel == bought.per_channel
    # the full labels do differ, so an oracle fingerprint would change
    oracle = tmp_path / "oracle"
    ct.make_raw_dataset(oracle, n_train=4)
    full = foreground_intensity_statistics(oracle).per_channel["0"]
    for case, truth in changed.items():
        ct.write_image(truth, oracle / "labelsTr" / f"{case}.nii.gz")
    assert foreground_intensity_statistics(oracle).per_channel["0"]["mean"] < full["mean"] - 100


def test_without_annotated_foreground_every_annotated_voxel_counts(tmp_path):
    folder = ct.make_raw_dataset(tmp_path / "Dataset002_Ct", n_train=2)
    truths = {p.name[: -len(".nii.gz")]: ct.read_image(p) for p in (folder / "labelsTr").glob("*.nii.gz")}
    air = Patch(file="ct_tr000.nii.gz", start=(0, 0, 0), size=(3, 3, 3))
    _experiment(folder, truths, {"ct_tr000": [air]})
    result = foreground_intensity_statistics(folder, ["ct_tr000", "ct_tr001"])
    assert result.cases == ("ct_tr000",) and result.voxels == 27
    assert result.per_channel["0"]["mean"] == pytest.approx(ct.HU["air"], abs=10)
    assert "no annotated foreground" in result.source


def test_errors_name_the_problem(dataset):
    folder, _, _ = dataset
    with pytest.raises(ValueError, match="foreground must be one of annotated, not-background"):
        foreground_intensity_statistics(folder, foreground="all")
    with pytest.raises(ValueError, match="no labelled case"):
        foreground_intensity_statistics(folder, [])
