"""The parts of the nnU-Net steps that need no nnU-Net: seeds and splits."""

import json

from experiment.fake_nnunet_steps import small_config

from nnactive_core.experiment import nnunet_steps
from nnactive_core.experiment.layout import ExperimentLayout, Roots


def layout_in(tmp_path) -> ExperimentLayout:
    layout = ExperimentLayout(
        roots=Roots.under(tmp_path), base="Dataset900_Demo", folder="Dataset001_Demo__x"
    )
    layout.results.mkdir(parents=True)
    layout.preprocessed.mkdir(parents=True)
    return layout


def test_splits_cover_every_annotated_case_with_loop_seeds(tmp_path):
    layout = layout_in(tmp_path)
    classes = {f"case_{i}": [0, 1] if i % 2 else [0] for i in range(6)}
    layout.annotated_classes_file.write_text(json.dumps(classes))
    config = small_config(folds=3)
    nnunet_steps.write_splits(layout, config, loop=1)
    splits = json.loads((layout.preprocessed / "splits_final.json").read_text())
    assert len(splits) == 3
    assert sorted(c for fold in splits for c in fold["val"]) == sorted(classes)
    assert nnunet_steps.loop_seed(config, 1, "splits") == nnunet_steps.loop_seed(config, 1, "splits")
    assert nnunet_steps.loop_seed(config, 1, "splits") != nnunet_steps.loop_seed(config, 2, "splits")
