"""Import of annotators' labels: a correct export is stored and served to the runner; every kind of
mistake is reported naming its file, all at once, and nothing is written."""

import numpy as np
import pytest
import SimpleITK as sitk
from annotate.fake_experiment import IGNORE, LOOP1, build_experiment, fill_from_truth, write_image

from nnactive_core.annotate.context import AnnotationError, open_experiment
from nnactive_core.annotate.export import export_loop
from nnactive_core.annotate.ingest import import_labels
from nnactive_core.experiment.human_oracle import imported_labels
from nnactive_core.experiment.state import PREPROCESS, State, save_state
from nnactive_core.patches.patch import save_loop


@pytest.fixture
def fake(tmp_path):
    return build_experiment(tmp_path / "exp")


@pytest.fixture
def handle(fake):
    return open_experiment(fake.roots, fake.layout.name)


@pytest.fixture
def export(tmp_path, handle):
    folder = tmp_path / "export"
    export_loop(handle, folder)
    return folder


def labels_file(export, case):
    return export / "labels" / f"{case}.nii.gz"


def rewrite(path, change):
    """Load a saved label file, change its array, save it back with the same geometry."""
    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image)
    change(array)
    write_image(array, path, geometry_of=image)


def region(fake, case):
    mask = np.zeros(fake.dataset.shape(case), dtype=bool)
    for patch in LOOP1:
        if patch.file == f"{case}.nii.gz":
            mask[patch.slices] = True
    return mask


def nothing_imported(fake):
    folder = fake.layout.annotations(1)
    leftovers = [p for p in fake.layout.results.rglob("*") if p.name.startswith(".annotations")]
    return not folder.exists() and not leftovers and imported_labels(fake.layout, 1) is None


def test_a_complete_import_is_stored_and_served(fake, handle, export):
    assert imported_labels(fake.layout, 1) is None
    fill_from_truth(export, fake.dataset)
    summary = import_labels(handle, export)
    assert summary.loop == 1 and summary.cases == ("tiny_000", "tiny_002")
    folder = fake.layout.annotations(1)
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "tiny_000.nii.gz", "tiny_002.nii.gz"]
    source = imported_labels(fake.layout, 1)
    for case in summary.cases:
        labels, inside = source(case), region(fake, case)
        assert np.array_equal(labels[inside], fake.dataset.read_labels(case)[inside])
        assert (labels[~inside] == IGNORE).all()
        stored = sitk.ReadImage(str(folder / f"{case}.nii.gz"))
        assert np.allclose(
            stored.GetDirection(), sitk.ReadImage(str(fake.dataset.label_file(case))).GetDirection()
        )
    with pytest.raises(KeyError, match="tiny_001"):
        source("tiny_001")


def test_an_import_may_set_the_outside_to_ignore_and_may_be_replaced_before_use(fake, handle, export):
    fill_from_truth(export, fake.dataset)
    rewrite(labels_file(export, "tiny_002"), lambda a: a.__setitem__(~region(fake, "tiny_002"), IGNORE))
    import_labels(handle, export)
    rewrite(labels_file(export, "tiny_002"), lambda a: a.__setitem__(region(fake, "tiny_002"), 0))
    import_labels(handle, export)
    assert (imported_labels(fake.layout, 1)("tiny_002")[region(fake, "tiny_002")] == 0).all()
    assert not [p for p in fake.layout.annotations(1).parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    "case, mistake, message",
    [
        ("tiny_000", "geometry", "spacing .* differs from"),
        ("tiny_000", "size", r"size \(z, y, x\) \(6, 8, 8\) differs from \(6, 8, 9\)"),
        ("tiny_002", "outside", "1 voxel.* outside the region to annotate differ"),
        ("tiny_002", "unknown value", r"label value\(s\) \[7\] inside the region are not declared"),
        ("tiny_000", "unlabelled", "inside the region are not labelled"),
        ("tiny_002", "missing", "tiny_002.nii.gz: missing"),
        ("tiny_005", "stranger", "'tiny_005' is not a case of this export"),
    ],
)
def test_each_mistake_is_rejected_naming_the_file_and_nothing_is_written(
    fake, handle, export, case, mistake, message
):
    fill_from_truth(export, fake.dataset)
    path = labels_file(export, case)
    if mistake == "geometry":
        image = sitk.ReadImage(str(path))
        image.SetSpacing((0.7, 1.3, 3.0))
        sitk.WriteImage(image, str(path))
    elif mistake == "size":
        write_image(np.zeros((6, 8, 8), dtype=np.uint8), path)
    elif mistake == "outside":
        rewrite(path, lambda a: a.__setitem__((0, 0, 0), (int(a[0, 0, 0]) + 1) % 3))
    elif mistake == "unknown value":
        rewrite(path, lambda a: a.__setitem__((2, 2, 2), 7))
    elif mistake == "unlabelled":
        rewrite(path, lambda a: a.__setitem__((3, 4, 4), IGNORE))
    elif mistake == "missing":
        path.unlink()
    elif mistake == "stranger":
        write_image(np.zeros((2, 2, 2), dtype=np.uint8), path)
    with pytest.raises(AnnotationError, match=message) as caught:
        import_labels(handle, export)
    assert len(caught.value.problems) == 1 and str(path) in caught.value.problems[0]
    assert nothing_imported(fake)


def test_every_violation_is_listed_one_line_each(fake, handle, export):
    fill_from_truth(export, fake.dataset)
    rewrite(labels_file(export, "tiny_000"), lambda a: a.__setitem__((3, 4, 4), 9))
    rewrite(labels_file(export, "tiny_002"), lambda a: a.__setitem__((0, 0, 0), 1 - min(int(a[0, 0, 0]), 1)))
    (export / "labels" / "notes.txt").write_text("done!")
    with pytest.raises(AnnotationError) as caught:
        import_labels(handle, export)
    problems = caught.value.problems
    assert len(problems) == 3 and all("\n" not in line for line in problems)
    assert [p.split(": ")[0].rsplit("/", 1)[-1] for p in problems] == [
        "notes.txt",
        "tiny_000.nii.gz",
        "tiny_002.nii.gz",
    ]
    assert nothing_imported(fake)


def test_refuses_another_experiment_loop_a_stale_export_and_labels_already_used(fake, handle, export):
    fill_from_truth(export, fake.dataset)
    with pytest.raises(AnnotationError, match="export of loop 1, not loop 0"):
        import_labels(handle, export, loop=0)
    save_loop(fake.layout.raw, 1, [*LOOP1[:2]])
    with pytest.raises(AnnotationError, match="exported boxes differ from loop 1's loop file"):
        import_labels(handle, export)
    save_loop(fake.layout.raw, 1, LOOP1)
    save_state(fake.layout.results, State(loop=1, step=PREPROCESS))
    with pytest.raises(AnnotationError, match="loop 1's labels were already written"):
        import_labels(handle, export)
    assert nothing_imported(fake)


def test_a_stored_import_no_longer_counts_once_the_loop_is_queried_again(fake, handle, export):
    fill_from_truth(export, fake.dataset)
    import_labels(handle, export)
    assert imported_labels(fake.layout, 1) is not None
    save_loop(fake.layout.raw, 1, LOOP1[:2])
    assert imported_labels(fake.layout, 1) is None
