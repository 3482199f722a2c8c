"""Export of a loop's queried boxes: images, partial labels and masks in each case's geometry, a
manifest with voxel and world boxes, instructions; idempotent and never over someone else's folder."""

import json
import os

import numpy as np
import pytest
import SimpleITK as sitk
from annotate.fake_experiment import IGNORE, LABELS, LOOP0, LOOP1, build_experiment

from nnactive_core.annotate.context import AnnotationError, open_experiment
from nnactive_core.annotate.export import export_loop
from nnactive_core.annotate.manifest import read_manifest


@pytest.fixture
def fake(tmp_path):
    return build_experiment(tmp_path / "exp")


@pytest.fixture
def handle(fake):
    return open_experiment(fake.roots, fake.layout.name)


def read(path):
    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), image


def same_geometry(image, reference):
    return (
        image.GetSize() == reference.GetSize()
        and np.allclose(image.GetSpacing(), reference.GetSpacing(), atol=1e-5)
        and np.allclose(image.GetOrigin(), reference.GetOrigin(), atol=1e-5)
        and np.allclose(image.GetDirection(), reference.GetDirection(), atol=1e-5)
    )


def test_export_writes_images_partial_labels_masks_and_manifest(tmp_path, fake, handle):
    out = tmp_path / "export"
    manifest = export_loop(handle, out)  # newest loop by default
    assert manifest.loop == 1
    assert [entry.case for entry in manifest.cases] == ["tiny_000", "tiny_002"]  # tiny_001 has no new box
    stored = json.loads((out / "manifest.json").read_text())
    assert stored["experiment"] == fake.layout.name and stored["loop"] == 1
    assert stored["labels"] == LABELS and stored["ignore"] == IGNORE
    assert (out / "labels").is_dir() and not any((out / "labels").iterdir())
    for entry in manifest.cases:
        truth, reference = read(fake.dataset.label_file(entry.case))
        for channel, relative in enumerate(entry.images):
            exported, image = read(out / relative)
            original, _ = read(fake.dataset.image_files(entry.case)[channel])
            assert np.array_equal(exported, original) and same_geometry(image, reference)
        partial, image = read(out / entry.partial)
        current, _ = read(fake.layout.labels / f"{entry.case}.nii.gz")
        assert np.array_equal(partial, current) and same_geometry(image, reference)
        mask, image = read(out / entry.mask)
        expected = np.zeros(truth.shape, dtype=np.uint8)
        for patch in LOOP1:
            if patch.file == entry.label_file:
                expected[patch.slices] = 1
        assert mask.dtype == np.uint8 and np.array_equal(mask, expected) and same_geometry(image, reference)


def test_manifest_boxes_in_voxels_and_world_coordinates(tmp_path, fake, handle):
    export_loop(handle, tmp_path / "export")
    stored = json.loads((tmp_path / "export" / "manifest.json").read_text())
    case = next(c for c in stored["cases"] if c["case"] == "tiny_000")
    assert [(b["start"], b["size"]) for b in case["patches"]] == [
        ([3, 4, 4], [2, 3, 3]),
        ([0, 4, 5], [2, 3, 3]),
    ]
    _, reference = read(fake.dataset.label_file("tiny_000"))
    box = case["patches"][0]["physical"]
    assert np.allclose(box["first_voxel_centre"], reference.TransformIndexToPhysicalPoint((4, 4, 3)))
    assert np.allclose(box["last_voxel_centre"], reference.TransformIndexToPhysicalPoint((6, 6, 4)))
    assert np.allclose(
        box["upper_corner"], reference.TransformContinuousIndexToPhysicalPoint((6.5, 6.5, 4.5))
    )
    assert case["geometry"]["shape"] == [6, 8, 9]
    text = (tmp_path / "export" / "INSTRUCTIONS.txt").read_text()
    assert "labels/tiny_000.nii.gz" in text and "tumour" in text and str(IGNORE) in text


def test_a_case_without_partial_labels_exports_all_ignore_and_loop_zero_can_be_exported(
    tmp_path, fake, handle
):
    (fake.layout.labels / "tiny_001.nii.gz").unlink()
    manifest = export_loop(handle, tmp_path / "export", loop=0)
    assert [entry.case for entry in manifest.cases] == ["tiny_000", "tiny_001"]
    partial, _ = read(tmp_path / "export" / manifest.case("tiny_001").partial)
    assert (partial == IGNORE).all()
    mask, _ = read(tmp_path / "export" / manifest.case("tiny_001").mask)
    assert mask.sum() == LOOP0[1].volume


def test_export_again_is_identical_and_keeps_the_annotators_files(tmp_path, handle):
    out = tmp_path / "export"
    export_loop(handle, out)
    first = {p.relative_to(out): read(p)[0] for p in out.rglob("*.nii.gz")}
    (out / "labels" / "tiny_000.nii.gz").write_bytes(b"work in progress")
    export_loop(handle, out)
    again = {p.relative_to(out): read(p)[0] for p in out.rglob("*.nii.gz") if p.parent.name != "labels"}
    assert again.keys() == first.keys()
    assert all(np.array_equal(again[k], first[k]) for k in first)
    assert (out / "labels" / "tiny_000.nii.gz").read_bytes() == b"work in progress"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")] + [
        p for p in out.iterdir() if p.name.startswith(".")
    ]


def test_nrrd_export(tmp_path, handle):
    manifest = export_loop(handle, tmp_path / "export", file_format="nrrd")
    entry = manifest.case("tiny_002")
    assert entry.mask.endswith(".nrrd") and all(i.endswith(".nrrd") for i in entry.images)
    assert read_manifest(tmp_path / "export").file_format == "nrrd"
    mask, _ = read(tmp_path / "export" / entry.mask)
    assert mask.sum() == LOOP1[2].volume


def test_refuses_foreign_folders_and_missing_loops(tmp_path, handle):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(AnnotationError, match="foreign: folder is not empty"):
        export_loop(handle, foreign)
    export_loop(handle, tmp_path / "export", loop=1)
    with pytest.raises(AnnotationError, match="holds the export of .* loop 1, not .* loop 0"):
        export_loop(handle, tmp_path / "export", loop=0)
    with pytest.raises(AnnotationError, match="loop_005.json: no such loop file"):
        export_loop(handle, tmp_path / "other", loop=5)
    assert not (tmp_path / "other").exists() and (foreign / "notes.txt").read_text() == "mine"


def test_export_files_follow_the_umask_so_other_annotators_can_read_them(tmp_path, handle):
    previous = os.umask(0o022)
    try:
        export_loop(handle, tmp_path / "export")
    finally:
        os.umask(previous)
    paths = [tmp_path / "export", *(tmp_path / "export").rglob("*")]
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in paths)
