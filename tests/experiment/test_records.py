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
