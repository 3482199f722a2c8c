"""The parts of the nnU-Net steps that need no nnU-Net: seeds, splits and the planning lock."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

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


# Plans a base dataset as ``nnunet_steps.prepare_plans`` does, with nnU-Net's planning replaced by one
# that records who planned and holds on until the test lets it finish.
PLANNER = """
import json, os, sys, time, types
from pathlib import Path
from experiment.fake_nnunet_steps import small_config
from nnactive_core.experiment import nnunet_steps
from nnactive_core.experiment.layout import ExperimentLayout, Roots
from nnactive_core.nnunet.plans import plans_file

root, number = Path(sys.argv[1]), sys.argv[2]

def plan_dataset(folders, dataset):
    with open(root / "planned.txt", "a") as handle:
        handle.write(f"{number}\\n")
    while not (root / "go").exists():
        time.sleep(0.05)
    plans_file(folders, dataset).write_text(json.dumps({"configurations": {}}))

planning = types.ModuleType("nnactive_core.nnunet.planning")
planning.plan_dataset = plan_dataset
planning.prepare_experiment_plans = lambda *args, **kwargs: None
sys.modules[planning.__name__] = planning

class Reporter:
    def say(self, line):
        print(line, flush=True)

folder = f"Dataset00{number}_Demo__x"
layout = ExperimentLayout(roots=Roots.under(root), base="Dataset900_Demo", folder=folder)
nnunet_steps.prepare_plans(layout, small_config(), None, Reporter())
"""


def test_experiments_starting_together_plan_their_base_dataset_once(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}

    def start(number: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", PLANNER, str(tmp_path), number], env=env, stdout=subprocess.PIPE, text=True
        )

    def wait_for(condition) -> None:
        deadline = time.monotonic() + 120
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)

    planned = tmp_path / "planned.txt"
    first = start("1")
    wait_for(planned.exists)  # the first holds the planning lock
    second = start("2")
    assert "waiting for another process to plan the base dataset Dataset900_Demo" in second.stdout.readline()
    (tmp_path / "go").touch()
    outputs = [process.communicate(timeout=120)[0] for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    assert planned.read_text() == "1\n"
    assert "planning the base dataset" not in outputs[1]


def test_warm_start_takes_the_same_folds_final_weights_of_the_loop_before(tmp_path):
    layout = layout_in(tmp_path)
    warm = small_config(warm_start=True)
    archived = nnunet_steps.archived_model_folder(layout, 1)
    assert nnunet_steps.warm_start_checkpoint(layout, warm, loop=2, fold=1) == (
        archived / "fold_1" / "checkpoint_final.pth"
    )
    assert archived.name.startswith("loop_001__")
    # loop 0, and every loop of an established experiment, train from scratch
    assert nnunet_steps.warm_start_checkpoint(layout, warm, loop=0, fold=1) is None
    assert nnunet_steps.warm_start_checkpoint(layout, small_config(), loop=2, fold=1) is None
