"""The runner's view of imported labels: with annotators who label exactly the ground truth, the partial
labels written from the imports equal the oracle's, so a human run reproduces an oracle run."""

import numpy as np
import pytest
import SimpleITK as sitk
from annotate.fake_experiment import IGNORE, LOOP0, LOOP1, build_experiment, fill_from_truth

from nnactive_core.annotate.context import open_experiment
from nnactive_core.annotate.export import export_loop
from nnactive_core.annotate.ingest import import_labels
from nnactive_core.experiment.human_oracle import ImportedOracle, MissingImportError, imported_labels
from nnactive_core.experiment.oracle import write_partial_labels
from nnactive_core.experiment.state import SETUP, State, save_state


@pytest.fixture
def fake(tmp_path):
    return build_experiment(tmp_path / "exp")


def annotate_loop(fake, tmp_path, loop, change=None):
    handle = open_experiment(fake.roots, fake.layout.name)
    export = tmp_path / f"export_{loop}"
    export_loop(handle, export, loop=loop)
    fill_from_truth(export, fake.dataset)
    if change is not None:
        change(export)
    import_labels(handle, export)


def label_maps(folder):
    return {p.name: sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in sorted(folder.iterdir())}


def test_partial_labels_from_imports_equal_the_oracles(fake, tmp_path):
    save_state(fake.layout.results, State(loop=0, step=SETUP))
    annotate_loop(fake, tmp_path, 0)
    save_state(fake.layout.results, State(loop=0, step="annotate"))
    annotate_loop(fake, tmp_path, 1)
    everything = LOOP0 + LOOP1
    write_partial_labels(fake.dataset, tmp_path / "oracle", everything)
    write_partial_labels(ImportedOracle(fake.dataset, fake.layout, up_to=1), tmp_path / "human", everything)
    oracle, human = label_maps(tmp_path / "oracle"), label_maps(tmp_path / "human")
    assert oracle.keys() == human.keys() == {"tiny_000.nii.gz", "tiny_001.nii.gz", "tiny_002.nii.gz"}
    assert all(np.array_equal(oracle[name], human[name]) for name in oracle)


def test_labels_come_from_the_annotators_not_the_ground_truth(fake, tmp_path):
    def wrong_but_valid(export):
        path = export / "labels" / "tiny_002.nii.gz"
        image = sitk.ReadImage(str(path))
        array = sitk.GetArrayFromImage(image)
        array[LOOP1[2].slices] = 2
        out = sitk.GetImageFromArray(array)
        out.CopyInformation(image)
        sitk.WriteImage(out, str(path))

    annotate_loop(fake, tmp_path, 1, wrong_but_valid)
    oracle = ImportedOracle(fake.dataset, fake.layout, up_to=1, oracle_loops=(0,))
    labels = oracle.read_labels("tiny_002")
    assert (labels[LOOP1[2].slices] == 2).all()
    outside = np.ones(labels.shape, dtype=bool)
    outside[LOOP1[2].slices] = False
    assert (labels[outside] == IGNORE).all()
    case0 = oracle.read_labels("tiny_000")  # loop 0 from the ground truth, loop 1 from the import
    truth = fake.dataset.read_labels("tiny_000")
    for patch in (LOOP0[0], *LOOP1[:2]):
        assert np.array_equal(case0[patch.slices], truth[patch.slices])
    assert np.array_equal(
        oracle.read_labels("tiny_100", "validation"), fake.dataset.read_labels("tiny_100", "validation")
    )
    assert oracle.file_ending == ".nii.gz" and oracle.pool_cases() == fake.dataset.pool_cases()


def test_a_loop_without_import_names_the_loop_and_what_to_do(fake):
    assert imported_labels(fake.layout, 1) is None
    oracle = ImportedOracle(fake.dataset, fake.layout, up_to=1, oracle_loops=(0,))
    truth = fake.dataset.read_labels("tiny_001")  # loop 0 only, from the oracle: nothing missing
    assert np.array_equal(oracle.read_labels("tiny_001")[LOOP0[1].slices], truth[LOOP0[1].slices])
    with pytest.raises(
        MissingImportError,
        match=r"loop 1 queried case .tiny_002.*annotate export --experiment \S+ --loop 1 --output DIR",
    ):
        oracle.read_labels("tiny_002")
