import json

import numpy as np
import pytest

from nnactive_core.datasets.nnunet_raw import NnunetRawDataset
from nnactive_core.datasets.raw_format import DatasetError
from nnactive_core.datasets.validate import validate_dataset
from nnactive_dataset_atlas.build import (
    RECORD_FILE,
    AtlasOptions,
    OptionError,
    build_atlas_dataset,
    options_from,
)

OPTIONS = AtlasOptions(spacing=2.0, tile=16)


def _arrays(folder):
    import SimpleITK as sitk

    return {
        path.relative_to(folder).as_posix(): sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
        for path in sorted(folder.rglob("*.nii.gz"))
    }


@pytest.fixture(scope="module")
def built(sources, tmp_path_factory):
    folder, made = build_atlas_dataset(tmp_path_factory.mktemp("raw"), sources, OPTIONS)
    assert made
    return folder


def test_the_dataset_passes_the_full_check_and_has_matching_tiles(built):
    assert built.name == "Dataset950_BrainTissue"
    assert validate_dataset(built, level="full") == []
    dataset = NnunetRawDataset(built)
    assert dataset.pool_cases() == [f"left_{i:03d}" for i in range(len(dataset.pool_cases()))]
    assert dataset.validation_cases() == [c.replace("left", "right") for c in dataset.pool_cases()]
    assert len(dataset.pool_cases()) > 1
    for case in dataset.pool_cases():
        assert dataset.shape(case) == dataset.shape(case.replace("left", "right"))
        assert max(dataset.shape(case)) <= 16
    assert dataset.labels == {"background": 0, "cortex": 1, "deep_grey": 2, "ventricle": 3, "brainstem": 4}


def test_each_side_gets_the_labels_of_its_own_hemisphere(built):
    arrays = _arrays(built)
    pool = np.concatenate([a.ravel() for k, a in arrays.items() if k.startswith("labelsTr")])
    held_out = np.concatenate([a.ravel() for k, a in arrays.items() if k.startswith("labelsVal")])
    # cortex and thalamus (deep grey) exist on both sides; the 20% ventricle map never reaches 25%
    for labels in (pool, held_out):
        assert {0, 1, 2} <= set(np.unique(labels).tolist()) and 3 not in labels


def test_no_sample_crosses_the_midline(ramp_sources, tmp_path):
    """Intensity = 100 + RAS x: the pool (left) must only see x <= -1, the mirrored right x >= 1."""
    folder, _ = build_atlas_dataset(tmp_path, ramp_sources, AtlasOptions(spacing=1.0, tile=16))
    arrays = _arrays(folder)
    pool = np.concatenate([a.ravel() for k, a in arrays.items() if k.startswith("imagesTr")])
    held_out = np.concatenate([a.ravel() for k, a in arrays.items() if k.startswith("imagesVal")])
    assert pool.max() <= 99 + 1e-4 and held_out.min() >= 101 - 1e-4
    # mirrored: the same position holds the mirror-image intensity
    assert np.allclose(np.sort(200 - pool), np.sort(held_out))


def test_the_same_options_give_the_same_bytes(sources, built, tmp_path):
    again, made = build_atlas_dataset(tmp_path / built.name, sources, OPTIONS)
    assert made
    files = sorted(p.relative_to(built) for p in built.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:
        assert (built / name).read_bytes() == (again / name).read_bytes(), name


def test_an_existing_build_is_reused_and_a_different_one_refused(sources, built):
    folder, made = build_atlas_dataset(built, sources, OPTIONS)
    assert folder == built and not made
    with pytest.raises(DatasetError, match=f"{RECORD_FILE}: built with other spacing"):
        build_atlas_dataset(built, sources, AtlasOptions(spacing=3.0, tile=16))


def test_a_folder_not_built_here_is_refused(sources, tmp_path):
    (tmp_path / "Dataset950_BrainTissue").mkdir()
    with pytest.raises(DatasetError, match="not built by nnactive-dataset-atlas"):
        build_atlas_dataset(tmp_path, sources, OPTIONS)


def test_a_failed_build_leaves_nothing_behind(sources, tmp_path, monkeypatch):
    from nnactive_dataset_atlas import build

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(build, "_dataset_json", fail)
    with pytest.raises(OSError, match="disk full"):
        build_atlas_dataset(tmp_path, sources, OPTIONS)
    assert list(tmp_path.iterdir()) == []


def test_subcortical_set_and_record(sources, tmp_path):
    folder, _ = build_atlas_dataset(tmp_path, sources, AtlasOptions(label_set="subcortical", spacing=2.0))
    assert folder.name == "Dataset951_BrainSubcortical"
    record = json.loads((folder / RECORD_FILE).read_text())
    assert record["label_set"] == "subcortical" and set(record["sources"]) >= {"template", "atlas"}
    assert json.loads((folder / "dataset.json").read_text())["labels"]["thalamus"] == 1


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"label_set": "lobes"}, "option label_set must be one of tissue, subcortical"),
        ({"spacing": 0.5}, "option spacing must be a number of mm in"),
        ({"spacing": "fine"}, "option spacing must be a number"),
        ({"tile": 8}, "option tile must be at least 16"),
        ({"tile": [32, 32]}, "option tile must be one whole number or three"),
        ({"threshold": 0}, "option threshold must be a percentage"),
        ({"pool_hemisphere": "top"}, "option pool_hemisphere must be one of left, right"),
        ({"colour": "red"}, "unknown option\\(s\\) colour"),
    ],
)
def test_bad_options_get_one_line_naming_the_option(raw, message):
    with pytest.raises(OptionError, match=message) as error:
        options_from(raw)
    assert str(error.value).startswith("dataset adapter 'atlas': ") and "\n" not in str(error.value)
