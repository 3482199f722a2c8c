"""The parts of the nnU-Net glue that need no nnU-Net: records, seeds, splits and the plans check."""

import json

from experiment.fake_models import small_config

from nnactive_core.experiment import models
from nnactive_core.experiment.layout import ExperimentLayout, Roots
from nnactive_core.patches.patch import Patch
from nnactive_core.testing.synthetic import SyntheticDataset


def layout_in(tmp_path) -> ExperimentLayout:
    layout = ExperimentLayout(
        roots=Roots.under(tmp_path), base="Dataset900_Demo", folder="Dataset001_Demo__x"
    )
    layout.results.mkdir(parents=True)
    layout.preprocessed.mkdir(parents=True)
    return layout


def test_annotated_classes_follow_the_patches_and_only_named_cases_are_recomputed(tmp_path):
    layout = layout_in(tmp_path)
    dataset = SyntheticDataset.generate(cases=3, shape=(24, 24, 24))
    whole = Patch(file="case_000.nii.gz", start=(0, 0, 0), size=(24, 24, 24))
    corner = Patch(file="case_001.nii.gz", start=(0, 0, 0), size=(2, 2, 2))
    known = models.record_annotated_classes(layout, dataset, [whole, corner], replace=True)
    assert known == {"case_000": [0, 1, 2], "case_001": [0]}
    stale = dict(known, case_001=[7])
    (layout.results / models.ANNOTATED_CLASSES_FILE).write_text(json.dumps(stale))
    later = models.record_annotated_classes(layout, dataset, [whole, corner], cases=["case_000"])
    assert later["case_001"] == [7]  # not recomputed: its patches did not change
    assert models.read_annotated_classes(layout) == later


def test_splits_cover_every_annotated_case_with_loop_seeds(tmp_path):
    layout = layout_in(tmp_path)
    classes = {f"case_{i}": [0, 1] if i % 2 else [0] for i in range(6)}
    (layout.results / models.ANNOTATED_CLASSES_FILE).write_text(json.dumps(classes))
    config = small_config(folds=3)
    models.write_splits(layout, config, loop=1)
    splits = json.loads((layout.preprocessed / "splits_final.json").read_text())
    assert len(splits) == 3
    assert sorted(c for fold in splits for c in fold["val"]) == sorted(classes)
    assert models.loop_seed(config, 1, "splits") == models.loop_seed(config, 1, "splits")
    assert models.loop_seed(config, 1, "splits") != models.loop_seed(config, 2, "splits")


def test_only_readable_plans_count_as_planned(tmp_path):
    plans = tmp_path / "nnUNetPlans.json"
    assert not models._is_planned(plans)
    plans.write_text('{"configurations": {"3d_fu')  # a planning run killed mid-write
    assert not models._is_planned(plans)
    plans.write_text(json.dumps({"configurations": {}}))
    assert models._is_planned(plans)
