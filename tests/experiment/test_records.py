"""The records a loop keeps: annotated classes per case, recomputed only where patches changed."""

import json

from nnactive_core.experiment import records
from nnactive_core.experiment.layout import ExperimentLayout, Roots
from nnactive_core.patches.patch import Patch
from nnactive_core.testing.synthetic import SyntheticDataset


def test_annotated_classes_follow_the_patches_and_only_named_cases_are_recomputed(tmp_path):
    layout = ExperimentLayout(
        roots=Roots.under(tmp_path), base="Dataset900_Demo", folder="Dataset001_Demo__x"
    )
    layout.results.mkdir(parents=True)
    dataset = SyntheticDataset.generate(cases=3, shape=(24, 24, 24))
    whole = Patch(file="case_000.nii.gz", start=(0, 0, 0), size=(24, 24, 24))
    corner = Patch(file="case_001.nii.gz", start=(0, 0, 0), size=(2, 2, 2))
    known = records.record_annotated_classes(layout, dataset, [whole, corner], replace=True)
    assert known == {"case_000": [0, 1, 2], "case_001": [0]}
    stale = dict(known, case_001=[7])
    layout.annotated_classes_file.write_text(json.dumps(stale))
    later = records.record_annotated_classes(layout, dataset, [whole, corner], cases=["case_000"])
    assert later["case_001"] == [7]  # not recomputed: its patches did not change
    assert records.read_annotated_classes(layout) == later


def test_the_budget_record_charges_the_labels_and_carries_the_rest(tmp_path):
    from nnactive_core.experiment.config import ExperimentConfig
    from nnactive_core.patches.patch import save_loop

    layout = ExperimentLayout(
        roots=Roots.under(tmp_path), base="Dataset900_Demo", folder="Dataset001_Demo__x"
    )
    layout.results.mkdir(parents=True)
    dataset = SyntheticDataset.generate(cases=2, shape=(24, 24, 24))
    config = ExperimentConfig(
        dataset="Dataset900_Demo",
        patch_size=(24, 24, 24),
        query_size=1,
        query_steps=2,
        strategy="random",
        starting_budget="random",
        budget_metric="foreground_voxels",
        query_budget=1000,
    )
    loop0 = [Patch(file="case_000.nii.gz", start=(0, 0, 0), size=(24, 24, 24))]
    loop1 = [Patch(file="case_001.nii.gz", start=(0, 0, 0), size=(24, 24, 24))]
    records.write_costs(layout, dataset, [loop0], config)
    first = json.loads(layout.costs_file(0).read_text())["budget"]
    assert first["planned"] is None and first["carry"] == 0.0  # loop 0 bought patches, not budget
    layout.query_file(0).parent.mkdir(parents=True, exist_ok=True)
    layout.query_file(0).write_text(json.dumps({"budget": {"planned": 1000.0, "estimated": 800.0}}))
    save_loop(layout.raw, 0, loop0)
    records.write_costs(layout, dataset, [loop0, loop1], config)
    costs = json.loads(layout.costs_file(1).read_text())
    charged = int((dataset.read_labels("case_001") > 0).sum())  # the annotated labels' foreground
    assert costs["budget"] == {
        "metric": "foreground_voxels",
        "planned": 1000.0,
        "estimated": 800.0,
        "charged": float(charged),
        "carry": 1000.0 - charged,
    }
    assert costs["loop"]["foreground_voxels"] == charged
    assert records.budget_carry(layout, 1) == 1000.0 - charged
    records.write_costs(layout, dataset, [loop0], None)
    assert "budget" not in json.loads(layout.costs_file(0).read_text())
