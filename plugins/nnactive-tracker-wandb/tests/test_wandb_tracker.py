"""The ``wandb`` tracker, registered through its entry point and fed by the core's tracker hub the
events of a two-loop experiment, in wandb's offline mode: the run, its group, config, per-loop
metrics, the query picture and the summary are read back from the files wandb wrote."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import ExperimentLayout, Roots
from nnactive_core.experiment.trackers import TrackerHub
from nnactive_core.plugins import registry
from nnactive_core.tracking import (
    FAILED,
    FINISHED,
    PAUSED,
    EpochFinished,
    ExperimentFinished,
    ExperimentStarted,
    FoldTrained,
    LoopValidated,
    QueryMade,
)
from nnactive_tracker_wandb.tracker import run_id, setting_group


def config(**changes) -> dict:
    fields = dict(
        dataset="Dataset900_Demo",
        dataset_adapter="demo",
        patch_size=(4, 4, 4),
        query_size=10,
        query_steps=2,
        strategy="random",
        starting_budget="random",
        seed=3,
    )
    return ExperimentConfig(**{**fields, **changes}).to_json()


@pytest.fixture
def layout(tmp_path) -> ExperimentLayout:
    layout = ExperimentLayout(
        roots=Roots.under(tmp_path), base="Dataset900_Demo", folder="Dataset001_Demo__x"
    )
    layout.results.mkdir(parents=True)
    return layout


def hub(layout: ExperimentLayout, said: list[str]) -> TrackerHub:
    return TrackerHub(layout, ["wandb"], registry(), said.append)


def started(layout: ExperimentLayout, loop: int = 0, step: str = "preprocess") -> ExperimentStarted:
    return ExperimentStarted(
        experiment=layout.folder,
        results=layout.results,
        config=config(),
        versions={"nnactive-core": "0.1.0", "nnactive-tracker-wandb": "0.1.0"},
        loops=2,
        loop=loop,
        step=step,
    )


def train_loop(tracker: TrackerHub, loop: int) -> None:
    for fold in (0, 1):
        for epoch in (0, 1):
            tracker.emit(
                EpochFinished(loop=loop, fold=fold, epoch=epoch, epochs=2, train_loss=1.0 - 0.25 * epoch)
            )
        tracker.emit(FoldTrained(loop=loop, fold=fold, seconds=2.0 + fold, final_loss=0.75))


def validated(layout: ExperimentLayout, loop: int, warnings=()) -> LoopValidated:
    dice = 0.4 + 0.1 * loop
    return LoopValidated(
        loop=loop,
        mean_dice=dice,
        dice={"organ": dice, "lesion": math.nan},
        budget={"patches": 10 * (loop + 1), "voxels": 640 * (loop + 1)},
        training_seconds=5.0,
        summary_file=layout.summary_file(loop),
        warnings=tuple(warnings),
    )


def overview(layout: ExperimentLayout, loop: int):
    import numpy as np
    from PIL import Image

    path = layout.query_pictures(loop) / "overview.png"
    path.parent.mkdir(parents=True)
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(path)
    return path


def test_the_entry_point_registers_the_tracker_without_importing_wandb():
    plugins = registry()
    assert "wandb" in plugins.names("tracker")
    assert plugins.owner("tracker", "wandb").name == "nnactive-tracker-wandb"
    code = "import sys; from nnactive_core.plugins import registry; registry(); print('wandb' in sys.modules)"
    assert subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout == ("False\n")


def test_an_experiment_is_one_offline_run_with_its_config_metrics_and_query_picture(layout, offline_runs):
    said = []
    tracker = hub(layout, said)
    tracker.start(started(layout))
    train_loop(tracker, 0)
    tracker.emit(validated(layout, 0, warnings=["loop 0: lesion in no validation case"]))
    picture = overview(layout, 1)
    tracker.emit(
        QueryMade(
            loop=1,
            strategy="random",
            patches=10,
            costs={"patches": 10, "voxels": 640},
            cumulative={"patches": 20, "voxels": 1280},
            overview=picture,
        )
    )
    train_loop(tracker, 1)
    tracker.emit(validated(layout, 1))
    tracker.emit(ExperimentFinished(loops=2, mean_dice=0.5, budget={"patches": 20, "voxels": 1280}))
    tracker.close(FINISHED)
    assert said == [] and tracker.problems == []

    (run,) = offline_runs(layout.results / "wandb")
    assert run.run_id == run_id(started(layout)) and run.name == layout.folder
    assert run.group == setting_group(config()) and run.group.startswith("Dataset900_Demo__patch-4_4_4")
    assert run.tags == ("Dataset900_Demo", "random", "seed-3") and run.job_type == "active-learning"
    assert run.config["strategy"] == "random" and run.config["query_size"] == 10
    assert run.config["experiment"] == layout.folder
    assert run.config["versions"]["nnactive-tracker-wandb"] == "0.1.0"

    losses = run.rows_with("train/loss")
    assert [row["train/epoch"] for row in losses] == list(range(1, 9))
    assert [row["train/loss"] for row in losses] == [1.0, 0.75] * 4
    folds = run.rows_with("fold/seconds/1")
    assert [(row["loop"], row["fold/seconds/1"], row["fold/final_loss/1"]) for row in folds] == [
        (0, 3.0, 0.75),
        (1, 3.0, 0.75),
    ]
    loops = run.rows_with("val/mean_dice")
    assert [(row["loop"], row["val/mean_dice"], row["val/dice/organ"]) for row in loops] == [
        (0, 0.4, 0.4),
        (1, 0.5, 0.5),
    ]
    assert all(math.isnan(row["val/dice/lesion"]) for row in loops)
    assert [(row["budget/patches"], row["train/loop_seconds"], row["val/warnings"]) for row in loops] == [
        (10, 5.0, 1),
        (20, 5.0, 0),
    ]
    (query,) = run.rows_with("query/patches")
    assert (query["loop"], query["query/patches"], query["query/voxels"]) == (1, 10, 640)
    assert query["query/overview/_type"] == "image-file"
    stored = run.folder / "files" / query["query/overview/path"]
    assert stored.is_file() and stored.read_bytes() == picture.read_bytes()

    assert run.summary["final/mean_dice"] == 0.5 and run.summary["final/budget/patches"] == 20
    assert run.summary["final/loops"] == 2 and run.summary["outcome"] == FINISHED
    assert run.exit_code == 0


def test_a_resumed_experiment_continues_its_run_and_a_failure_is_its_exit_code(layout, offline_runs):
    first = hub(layout, [])
    first.start(started(layout))
    train_loop(first, 0)
    first.close(PAUSED)
    second = hub(layout, [])
    second.start(started(layout, loop=0, step="validate"))
    second.emit(validated(layout, 0))
    second.close(FAILED)

    paused, failed = offline_runs(layout.results / "wandb")
    assert paused.run_id == failed.run_id == run_id(started(layout))
    assert (paused.summary["outcome"], paused.exit_code) == (PAUSED, 0)
    assert (failed.summary["outcome"], failed.exit_code) == (FAILED, 1)
    assert [row["val/mean_dice"] for row in failed.rows_with("val/mean_dice")] == [0.4]


def test_runs_are_grouped_by_grid_setting():
    group = setting_group(config())
    assert setting_group(config(strategy="pred_entropy", seed=4, device="cpu")) == group
    assert setting_group(config(query_size=20)) != group
    assert setting_group(config(dataset="Dataset901_Other")) != group
    long_name = "Dataset901_" + "Hippocampus" * 15
    first, second = (
        setting_group(config(dataset=long_name)),
        setting_group(config(dataset=long_name, query_size=20)),
    )
    assert len(first) == len(second) == 128, "cut to wandb's limit"
    assert first != second, "the hash at the end tells the settings apart"


def test_another_project_is_chosen_by_environment(layout, monkeypatch, offline_runs):
    monkeypatch.setenv("NNACTIVE_WANDB_PROJECT", "hippocampus-al")
    tracker = hub(layout, [])
    tracker.start(started(layout))
    tracker.close(FINISHED)
    (run,) = offline_runs(layout.results / "wandb")
    assert run.project == "hippocampus-al"
