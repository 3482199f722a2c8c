"""End to end: a loop with ``--annotator human``: the run stops after the query, the patches are
exported, filled from the ground truth (standing in for a person), imported, and the run continues.
The result equals the oracle run with the same seed."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from annotate.fake_experiment import fill_from_truth
from e2e.runs import nnactive, read_json, run_arguments

from nnactive_core.datasets.nnunet_raw import open_nnunet_raw
from nnactive_core.experiment.layout import list_experiments
from nnactive_core.patches.patch import loop_files

pytestmark = pytest.mark.e2e


def test_human_annotation_round_trip_equals_the_oracle_run(e2e_runs, e2e_human, tmp_path):
    roots = e2e_human
    first = nnactive(["run", *run_arguments(), "--annotator", "human"], roots)
    assert first.returncode == 0, first.stdout + first.stderr
    (layout,) = list_experiments(roots)
    state = read_json(layout.results / "state.json")
    assert (state["loop"], state["step"], state["last_error"]) == (0, "annotate", None)
    assert "waits for annotators" in first.stdout + first.stderr

    export = tmp_path / "export"
    exported = nnactive(["annotate", "export", "--experiment", layout.name, "--output", str(export)], roots)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    dataset = open_nnunet_raw(layout.base_raw)
    assert fill_from_truth(export, dataset)
    imported = nnactive(["annotate", "import", "--experiment", layout.name, "--input", str(export)], roots)
    assert imported.returncode == 0, imported.stdout + imported.stderr

    last = nnactive(["run", "--experiment", layout.name], roots)
    assert last.returncode == 0, last.stdout + last.stderr
    assert read_json(layout.results / "state.json")["step"] == "done"

    reference = e2e_runs.reference.layout
    for (_, ours), (_, theirs) in zip(loop_files(layout.raw), loop_files(reference.raw), strict=True):
        assert ours.read_bytes() == theirs.read_bytes(), ours.name
    for case in dataset.pool_cases():
        name = f"{case}{dataset.file_ending}"
        ours = sitk.GetArrayFromImage(sitk.ReadImage(str(layout.labels / name)))
        theirs = sitk.GetArrayFromImage(sitk.ReadImage(str(reference.labels / name)))
        assert np.array_equal(ours, theirs), case
