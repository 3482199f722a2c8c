import numpy as np
import pytest
import SimpleITK as sitk

from nnactive_core.experiment.oracle import (
    changed_cases,
    partial_labels,
    patches_by_file,
    write_partial_labels,
)
from nnactive_core.patches.patch import Patch
from nnactive_core.testing.synthetic import SyntheticDataset


def test_ground_truth_exactly_inside_patches_and_ignore_elsewhere():
    truth = np.random.default_rng(0).integers(0, 3, size=(10, 12, 14)).astype(np.uint8)
    patches = [
        Patch(file="a.nii.gz", start=(0, 0, 0), size=(3, 4, 5)),
        Patch(file="a.nii.gz", start=(6, 7, 8), size=(4, 5, 6)),
    ]
    out = partial_labels(truth, patches, ignore_label=3)
    inside = np.zeros(truth.shape, dtype=bool)
    for patch in patches:
        inside[patch.slices] = True
    assert np.array_equal(out[inside], truth[inside])
    assert (out[~inside] == 3).all()
    assert out.dtype == np.uint8


def test_free_labels_are_applied_last_and_override_the_ground_truth():
    truth = np.ones((6, 6, 6), dtype=np.uint8)
    free = np.full(truth.shape, 255, dtype=np.uint8)
    free[:, :, 0] = 0
    out = partial_labels(truth, [Patch(file="a.nii.gz", start=(0, 0, 0), size=(6, 6, 3))], 2, free)
    assert (out[:, :, 0] == 0).all()  # free background wins over the patch's ground truth
    assert (out[:, :, 1:3] == 1).all()
    assert (out[:, :, 3:] == 2).all()


def test_a_case_without_patches_is_all_ignore_and_large_ignore_values_widen_the_type():
    out = partial_labels(np.zeros((2, 2, 2), dtype=np.uint16), [], ignore_label=300)
    assert out.dtype == np.uint16 and (out == 300).all()


def test_errors_name_the_case():
    with pytest.raises(ValueError, match="'a.nii.gz'"):
        partial_labels(np.zeros((4, 4, 4)), [Patch(file="a.nii.gz", start=(2, 2, 2), size=(3, 3, 3))], 3)
    with pytest.raises(ValueError, match="free-label layer of a.nii.gz"):
        partial_labels(
            np.zeros((4, 4, 4)),
            [Patch(file="a.nii.gz", start=(0, 0, 0), size=(1, 1, 1))],
            3,
            np.zeros((4, 4, 5)),
        )


class FileDataset(SyntheticDataset):
    """The synthetic oracle with label files on disk, so the geometry can be copied."""

    def __init__(self, root, **kwargs):
        generated = SyntheticDataset.generate(cases=3, shape=(8, 9, 10))
        super().__init__(
            {c: generated.read_labels(c) for c in generated.pool_cases()}, labels=generated.labels, **kwargs
        )
        self.root = root
        (root / "labelsTr").mkdir(parents=True)
        for case in self.pool_cases():
            image = sitk.GetImageFromArray(self.read_labels(case))
            image.SetSpacing((0.5, 1.5, 2.0))
            image.SetOrigin((1.0, 2.0, 3.0))
            sitk.WriteImage(image, str(self.label_file(case)))


def test_write_only_the_named_cases_with_the_base_geometry(tmp_path):
    dataset = FileDataset(tmp_path / "base")
    out = tmp_path / "labelsTr"
    loop0 = [Patch(file="case_000.nii.gz", start=(0, 0, 0), size=(4, 4, 4))]
    assert write_partial_labels(dataset, out, loop0) == ["case_000", "case_001", "case_002"]
    loop1 = [Patch(file="case_002.nii.gz", start=(4, 4, 4), size=(4, 5, 6))]
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert write_partial_labels(dataset, out, loop0 + loop1, changed_cases(dataset, loop1)) == ["case_002"]
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert after["case_000.nii.gz"] == before["case_000.nii.gz"]
    assert after["case_001.nii.gz"] == before["case_001.nii.gz"]
    assert sorted(after) == sorted(before)  # no temporary files left behind
    image = sitk.ReadImage(str(out / "case_002.nii.gz"))
    assert image.GetSpacing() == (0.5, 1.5, 2.0) and image.GetOrigin() == (1.0, 2.0, 3.0)
    written = sitk.GetArrayFromImage(image)
    truth = dataset.read_labels("case_002")
    assert np.array_equal(written[loop1[0].slices], truth[loop1[0].slices])
    written[loop1[0].slices] = dataset.ignore_label
    assert (written == dataset.ignore_label).all()
    assert (sitk.GetArrayFromImage(sitk.ReadImage(str(out / "case_001.nii.gz"))) == 3).all()


def test_patches_outside_the_pool_are_refused(tmp_path):
    dataset = FileDataset(tmp_path / "base")
    with pytest.raises(ValueError, match="outside the pool.*case_009"):
        write_partial_labels(
            dataset, tmp_path / "out", [Patch(file="case_009.nii.gz", start=(0, 0, 0), size=(1, 1, 1))]
        )


def test_grouping():
    a = Patch(file="a.nii.gz", start=(0, 0, 0), size=(1, 1, 1))
    b = Patch(file="b.nii.gz", start=(0, 0, 0), size=(1, 1, 1))
    assert patches_by_file([a, b, a]) == {"a.nii.gz": [a, a], "b.nii.gz": [b]}
