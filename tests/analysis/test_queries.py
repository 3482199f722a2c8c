import json

import numpy as np
import pytest

from nnactive_core.analysis.queries import QueryPictureError, resolve_experiment, visualize_queries

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _write_image(array, path):
    import SimpleITK as sitk

    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))


def fake_query_experiment(root):
    """A base dataset with two 8x24x24 cases and an experiment with two loops of patches."""
    rng = np.random.default_rng(0)
    base = root / "raw" / "nnUNet_raw" / "Dataset900_Fake"
    for index in range(2):
        image = rng.normal(100, 20, size=(8, 24, 24)).astype(np.float32)
        labels = np.zeros((8, 24, 24), dtype=np.uint8)
        labels[2:6, 4:12, 4:12] = 1
        labels[3:5, 14:20, 14:20] = 2
        _write_image(image, base / "imagesTr" / f"case_{index}_0000.nii.gz")
        _write_image(labels, base / "labelsTr" / f"case_{index}.nii.gz")
    name = "Dataset001_Fake__patch-4_8_8__sb-random__sbs-2__qs-1__unc-random__seed-1"
    raw = root / "data" / "Dataset900_Fake" / "nnUNet_raw" / name
    raw.mkdir(parents=True)
    (raw / "imagesTr").symlink_to(base / "imagesTr")
    labels = {"background": 0, "liver": 1, "tumour": 2, "ignore": 3}
    (raw / "dataset.json").write_text(json.dumps({"labels": labels, "file_ending": ".nii.gz"}))
    loops = [
        [
            {"file": "case_1.nii.gz", "coords": [2, 4, 4], "size": [4, 8, 8]},
            {"file": "case_0.nii.gz", "coords": [0, 12, 12], "size": [4, 8, 8]},
        ],
        [{"file": "case_1.nii.gz", "coords": [4, 14, 14], "size": [4, 8, 8]}],
    ]
    for loop, patches in enumerate(loops):
        (raw / f"loop_{loop:03d}.json").write_text(json.dumps({"patches": patches}))
    results = root / "data" / "Dataset900_Fake" / "nnActive_results" / name
    results.mkdir(parents=True)
    (results / "config.json").write_text(
        json.dumps({"dataset": "Dataset900_Fake", "strategy": "random", "seed": 1})
    )
    (results / "paths.json").write_text(json.dumps({"raw": str(raw)}))
    return results


def test_pictures_per_patch_and_overview(tmp_path):
    import matplotlib.image

    results = fake_query_experiment(tmp_path)
    output = tmp_path / "pictures"
    overviews = visualize_queries(results, output)
    assert overviews == [output / "overview-loop_000.png", output / "overview-loop_001.png"]
    expected = [
        output / "loop_000" / "loop-00__id-00__img-case_1.png",
        output / "loop_000" / "loop-00__id-01__img-case_0.png",
        output / "loop_001" / "loop-01__id-00__img-case_1.png",
    ]
    assert sorted(output.rglob("loop-*.png")) == sorted(expected)
    for path in [*expected, *overviews]:
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert matplotlib.image.imread(path).shape[0] > 100


def test_experiment_found_by_name(tmp_path, monkeypatch):
    results = fake_query_experiment(tmp_path)
    monkeypatch.setenv("nnActive_results", str(tmp_path / "data"))
    assert resolve_experiment(results.name) == results
    assert resolve_experiment(results.name.split("_", 1)[1]) == results
    with pytest.raises(QueryPictureError, match="no experiment"):
        resolve_experiment("missing")


def test_patch_outside_case_is_reported(tmp_path):
    results = fake_query_experiment(tmp_path)
    raw = json.loads((results / "paths.json").read_text())["raw"]
    bad = {"patches": [{"file": "case_0.nii.gz", "coords": [6, 0, 0], "size": [4, 8, 8]}]}
    (tmp_path / raw / "loop_002.json").write_text(json.dumps(bad))
    with pytest.raises(QueryPictureError, match="does not fit"):
        visualize_queries(results, tmp_path / "pictures")
