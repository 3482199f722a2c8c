"""The built-in demo dataset: deterministic phantoms, a valid nnU-Net raw dataset, rare classes."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from nnactive_core.datasets.api import Dataset
from nnactive_core.datasets.demo import (
    LABELS,
    NOISE,
    PARAMETERS_FILE,
    SCALE,
    DemoParameters,
    build_demo_dataset,
    class_fractions,
    generate_case,
)
from nnactive_core.datasets.nnunet_raw import NnunetRawDataset
from nnactive_core.datasets.raw_format import DatasetError
from nnactive_core.datasets.validate import validate_dataset
from nnactive_core.plugins import load_registry

SMALL = DemoParameters(seed=3, n_cases=6, n_validation=2, size=32)


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    folder, built = build_demo_dataset(tmp_path_factory.mktemp("raw"), SMALL)
    assert built
    return folder


def test_same_seed_gives_identical_arrays_and_another_seed_does_not():
    first = generate_case(4, SMALL)
    second = generate_case(4, SMALL)
    for a, b in zip(first, second, strict=True):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    other = generate_case(4, DemoParameters(seed=4, n_cases=6, size=32))
    assert not np.array_equal(first[1], other[1])


def test_two_generations_on_disk_are_identical(tmp_path, small_demo):
    again, built = build_demo_dataset(tmp_path, SMALL)
    assert built
    for relative in ("imagesTr/demo_002_0000.nii.gz", "labelsVal/demo_007.nii.gz"):
        a = sitk.GetArrayFromImage(sitk.ReadImage(str(small_demo / relative)))
        b = sitk.GetArrayFromImage(sitk.ReadImage(str(again / relative)))
        assert a.tobytes() == b.tobytes()


def test_layout_and_dataset_json(small_demo):
    assert small_demo.name == "Dataset900_Demo"
    dataset_json = json.loads((small_demo / "dataset.json").read_text())
    assert dataset_json["channel_names"] == {"0": "MRI"}
    assert dataset_json["labels"] == LABELS and "ignore" not in dataset_json["labels"]
    assert (dataset_json["numTraining"], dataset_json["numVal"], dataset_json["file_ending"]) == (
        6,
        2,
        ".nii.gz",
    )
    dataset = NnunetRawDataset(small_demo)
    assert len(dataset.pool_cases()) == 6 and len(dataset.validation_cases()) == 2
    assert not set(dataset.pool_cases()) & set(dataset.validation_cases())
    assert validate_dataset(small_demo, level="full") == []


def test_spacing_is_written_in_itk_order(small_demo):
    image = sitk.ReadImage(str(small_demo / "imagesTr" / "demo_000_0000.nii.gz"))
    assert image.GetSpacing() == (1.0, 1.0, 2.0)
    assert sitk.GetArrayFromImage(image).shape == (32, 32, 32)
    labels = sitk.ReadImage(str(small_demo / "labelsTr" / "demo_000.nii.gz"))
    assert labels.GetOrigin() == image.GetOrigin() and labels.GetSpacing() == image.GetSpacing()


def test_structures_differ_in_size_and_lesions_are_missing_in_some_cases(small_demo):
    dataset = NnunetRawDataset(small_demo)
    fractions = class_fractions(dataset)
    assert set(fractions) == set(LABELS)
    assert abs(sum(fractions.values()) - 1.0) < 1e-9
    assert fractions["organ"] > fractions["gland"] > fractions["vessel"] > fractions["lesion"] > 0
    assert min(fractions.values()) < 0.01
    with_lesion = [np.any(dataset.read_labels(c) == LABELS["lesion"]) for c in dataset.pool_cases()]
    assert any(with_lesion) and not all(with_lesion)


def test_default_size_fractions_have_a_class_under_one_percent():
    parameters = DemoParameters()
    assert (parameters.n_cases, parameters.size) == (30, 64)
    counts = np.zeros(len(LABELS))
    for index in range(parameters.n_cases):
        counts += np.bincount(generate_case(index, parameters)[1].ravel(), minlength=len(LABELS))
    fractions = counts / counts.sum()
    assert fractions[0] > 0.85
    assert fractions[LABELS["vessel"]] < 0.01 and fractions[LABELS["lesion"]] < 0.01
    assert fractions[LABELS["organ"]] > 0.03


def test_structures_have_contrast_to_their_surroundings():
    from scipy.ndimage import binary_dilation

    image, labels = generate_case(0, DemoParameters(size=48))
    noise = NOISE * SCALE
    for name in ("organ", "gland", "vessel", "lesion"):
        inside = labels == LABELS[name]
        shell = binary_dilation(inside, iterations=2) & ~binary_dilation(inside) & (labels != LABELS[name])
        assert abs(image[inside].mean() - image[shell].mean()) > 3 * noise, name


def test_rebuild_is_skipped_and_other_parameters_are_refused(small_demo):
    before = (small_demo / "imagesTr" / "demo_000_0000.nii.gz").stat().st_mtime_ns
    folder, built = build_demo_dataset(small_demo.parent, SMALL)
    assert folder == small_demo and not built
    assert (small_demo / "imagesTr" / "demo_000_0000.nii.gz").stat().st_mtime_ns == before
    with pytest.raises(DatasetError, match=PARAMETERS_FILE):
        build_demo_dataset(small_demo.parent, DemoParameters(seed=99, n_cases=6, n_validation=2, size=32))


def test_existing_folder_that_is_not_a_demo_is_refused(tmp_path):
    (tmp_path / "Dataset900_Demo").mkdir()
    with pytest.raises(DatasetError, match="not an nnactive demo"):
        build_demo_dataset(tmp_path, SMALL)


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    import nnactive_core.datasets.demo as demo

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(demo, "_dataset_json", broken)
    with pytest.raises(RuntimeError):
        build_demo_dataset(tmp_path, DemoParameters(n_cases=2, n_validation=0, size=16))
    assert list(tmp_path.iterdir()) == []


def test_adapter_through_the_registry(tmp_path):
    adapter = load_registry().get("dataset adapter", "demo")
    dataset = adapter.open(tmp_path / "Dataset905_Demo", n_cases=3, n_validation=1, size=16)
    assert isinstance(dataset, Dataset)
    assert dataset.name == "Dataset905_Demo" and dataset.pool_cases() == ["demo_000", "demo_001", "demo_002"]
    assert dataset.ignore_label == 5 and dataset.background == 0
    assert dataset.shape("demo_003") == (16, 16, 16)
    assert adapter.open(tmp_path, n_cases=3, n_validation=1, size=16, dataset_id=905).root == dataset.root
    with pytest.raises(TypeError, match="unknown option"):
        adapter.open(tmp_path, colour="red")


def test_nnunet_integrity_check_accepts_the_demo(small_demo):
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    verify_dataset_integrity(str(small_demo), num_processes=1)


def test_written_to_plain_nnunet_reader(small_demo):
    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    data, properties = SimpleITKIO().read_images([str(small_demo / "imagesTr" / "demo_001_0000.nii.gz")])
    assert data.shape == (1, 32, 32, 32)
    assert list(properties["spacing"]) == [2.0, 1.0, 1.0]
