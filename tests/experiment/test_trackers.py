"""Trackers observe a run through the fifth hook's events, with the nnU-Net side faked: every event
in order with its data, a failing tracker reported once by name without stopping the run, the
trackers recorded for resumes, and ``nnactive run --tracker``."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner
from experiment.fake_nnunet_steps import SMALL_DEMO, FakeNnunetSteps, VesselNeverPredicted, small_config
from experiment.fake_tracker import RecordingTracker, registry_with

from nnactive_core import plugins
from nnactive_core.cli.main import cli
from nnactive_core.experiment.layout import Roots, list_experiments
from nnactive_core.experiment.run import run_experiment
from nnactive_core.experiment.runner import RunError
from nnactive_core.experiment.setup import setup_experiment
from nnactive_core.launchers.status import experiment_status, status_records
from nnactive_core.tracking import (
    EpochFinished,
    ExperimentFinished,
    ExperimentStarted,
    FoldTrained,
    LoopValidated,
    QueryMade,
)


def experiment(tmp_path, monkeypatch, fake=None):
    fake = (fake or FakeNnunetSteps(root=tmp_path)).install(monkeypatch)
    roots = Roots(raw=tmp_path / "raw", data=tmp_path / "data", results=tmp_path / "data")
    return setup_experiment(small_config(), roots), fake


def draw(layout, loop):
    path = layout.query_pictures(loop) / f"overview-loop_{loop:03d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"picture")
    return path


def kinds(events) -> list[str]:
    return [type(e).__name__ if not isinstance(e, tuple) else e[0] for e in events]


def test_every_event_arrives_in_order_with_its_data(tmp_path, monkeypatch):
    layout, _ = experiment(tmp_path, monkeypatch)
    tracker = RecordingTracker()
    lines = []
    run_experiment(
        layout,
        registry=registry_with(tracker),
        trackers=["recorder"],
        echo=lines.append,
        display=False,
        query_picture=draw,
    )
    events = tracker.events
    per_loop = ["EpochFinished", "EpochFinished", "FoldTrained"] * 2 + ["LoopValidated"]
    expected = ["ExperimentStarted", *per_loop, "QueryMade", *per_loop, "QueryMade", *per_loop]
    assert kinds(events) == [*expected, "ExperimentFinished", "close"]
    started = events[0]
    assert isinstance(started, ExperimentStarted)
    assert (started.experiment, started.loops, started.loop, started.step) == (
        layout.folder,
        3,
        0,
        "preprocess",
    )
    assert started.config == small_config().to_json()
    assert set(started.versions) >= {"nnactive-core"}
    epochs = [e for e in events if isinstance(e, EpochFinished)]
    assert [(e.loop, e.fold, e.epoch, e.epochs, e.train_loss) for e in epochs[:4]] == [
        (0, 0, 0, 2, 1.0),
        (0, 0, 1, 2, 0.75),
        (0, 1, 0, 2, 1.0),
        (0, 1, 1, 2, 0.75),
    ]
    folds = [e for e in events if isinstance(e, FoldTrained)]
    assert [(e.loop, e.fold, e.final_loss) for e in folds] == [
        (loop, fold, 0.5) for loop in range(3) for fold in (0, 1)
    ]
    validated = [e for e in events if isinstance(e, LoopValidated)]
    for loop, event in enumerate(validated):
        patches = 10 * (loop + 1)
        assert event.loop == loop and event.budget["patches"] == patches
        assert event.mean_dice == pytest.approx(patches / 100)
        assert set(event.dice) == {"organ", "gland", "lesion", "vessel"}  # label names, not values
        assert event.summary_file == layout.summary_file(loop)
        assert event.training_seconds == pytest.approx(sum(folds[2 * loop + f].seconds for f in (0, 1)))
    queries = [e for e in events if isinstance(e, QueryMade)]
    assert [
        (q.loop, q.strategy, q.patches, q.costs["patches"], q.cumulative["patches"]) for q in queries
    ] == [
        (1, "random", 10, 10, 20),
        (2, "random", 10, 10, 30),
    ]
    assert [q.overview for q in queries] == [draw(layout, 1), draw(layout, 2)]
    finished = events[-2]
    assert isinstance(finished, ExperimentFinished)
    assert (finished.loops, finished.budget["patches"]) == (3, 30) and finished.mean_dice == pytest.approx(
        0.3
    )
    assert events[-1] == ("close", "finished")
    assert json.loads(layout.tracking_file.read_text()) == {"trackers": ["recorder"], "problems": []}
    assert not any("tracker" in line for line in lines)


def test_a_failing_tracker_is_reported_once_and_never_stops_the_run(tmp_path, monkeypatch):
    layout, _ = experiment(tmp_path, monkeypatch)
    broken, good = RecordingTracker("broken", fail_at="loop_validated"), RecordingTracker("good")
    lines = []
    state = run_experiment(
        layout,
        registry=registry_with(broken, good),
        trackers=["broken", "good"],
        echo=lines.append,
        display=False,
    )
    assert state.finished
    reports = [line for line in lines if "tracker" in line]
    assert reports == [
        "tracker broken (nnactive-test-trackers 0.0.1) failed at loop_validated (ValueError: cannot log "
        "LoopValidated); the run goes on without it"
    ]
    assert "LoopValidated" not in kinds(broken.events) and kinds(broken.events).count("FoldTrained") == 2
    assert kinds(good.events).count("LoopValidated") == 3 and good.events[-1] == ("close", "finished")
    recorded = json.loads(layout.tracking_file.read_text())
    assert recorded["problems"] == [
        {
            "tracker": "broken",
            "loop": 0,
            "event": "loop_validated",
            "error": "ValueError: cannot log LoopValidated",
        }
    ]
    (record,) = status_records([experiment_status(layout)])
    assert record["warnings"] == [
        {
            "kind": "tracker",
            "loop": 0,
            "classes": [],
            "message": "tracker broken failed at loop_validated: ValueError: cannot log LoopValidated",
        }
    ]


def test_loop_validated_carries_the_loops_recorded_warnings(tmp_path, monkeypatch):
    layout, _ = experiment(tmp_path, monkeypatch, fake=VesselNeverPredicted(root=tmp_path))
    tracker = RecordingTracker()
    run_experiment(
        layout, registry=registry_with(tracker), trackers=["recorder"], echo=lambda line: None, display=False
    )
    validated = [e for e in tracker.events if isinstance(e, LoopValidated)]
    assert [len(e.warnings) for e in validated] == [1, 1, 2]
    assert all("no voxel of vessel" in e.warnings[0] for e in validated)
    assert validated[2].warnings[1].startswith("loop 2: mean Dice fell")
    assert validated[0].dice == {"organ": 0.5, "vessel": 0.0}


def test_a_tracker_that_cannot_start_is_left_out(tmp_path, monkeypatch):
    layout, _ = experiment(tmp_path, monkeypatch)
    offline = RecordingTracker("offline", fail_at="start")
    lines = []
    state = run_experiment(
        layout, registry=registry_with(offline), trackers=["offline"], echo=lines.append, display=False
    )
    assert state.finished and offline.events == []
    assert [line for line in lines if "tracker" in line] == [
        "tracker offline (nnactive-test-trackers 0.0.1) failed at start (ConnectionError: tracker service "
        "unreachable); the run goes on without it"
    ]


def test_the_recorded_trackers_observe_a_resume_and_an_empty_list_clears_them(tmp_path, monkeypatch):
    fake = FakeNnunetSteps(root=tmp_path, fail={"train:1:0": 1, "train:2:0": 1})
    layout, _ = experiment(tmp_path, monkeypatch, fake)
    tracker = RecordingTracker()
    registry = registry_with(tracker)
    quiet = {"echo": lambda line: None, "display": False, "registry": registry}
    with pytest.raises(RunError):
        run_experiment(layout, trackers=["recorder"], **quiet)
    assert tracker.events[-1] == ("close", "failed")
    with pytest.raises(RunError):
        run_experiment(layout, **quiet)  # no --tracker: the recorded one
    resumed = [e for e in tracker.events if isinstance(e, ExperimentStarted)]
    assert [(e.loop, e.step) for e in resumed] == [(0, "preprocess"), (1, "train")]
    seen = len(tracker.events)
    assert run_experiment(layout, trackers=[], **quiet).finished  # --no-tracker
    assert len(tracker.events) == seen
    assert json.loads(layout.tracking_file.read_text())["trackers"] == []


def test_an_unknown_tracker_stops_before_anything_runs(tmp_path, monkeypatch):
    layout, fake = experiment(tmp_path, monkeypatch)
    before = list(fake.calls)
    with pytest.raises(
        plugins.PluginError, match="tracker 'recordr' is not recognized; did you mean 'recorder'"
    ):
        run_experiment(
            layout, registry=registry_with(RecordingTracker()), trackers=["recordr"], display=False
        )
    assert fake.calls == before and not layout.tracking_file.exists()


SMALL = [
    "--dataset", "Dataset900_Demo", "--dataset-adapter", "demo", "--strategy", "random", "--patch-size", "4",
    "--query-size", "10", "--loops", "2", "--folds", "2", "--profile", "tiny",
    *[f"--dataset-option={k}={v}" for k, v in SMALL_DEMO.items()],
]  # fmt: skip


def test_run_tracker_on_the_command_line_with_a_real_query_picture(tmp_path, monkeypatch):
    FakeNnunetSteps(root=tmp_path).install(monkeypatch)
    for key, value in Roots.under(tmp_path).env().items():
        monkeypatch.setenv(key, value)
    tracker = RecordingTracker()
    registry = registry_with(tracker)
    monkeypatch.setattr(plugins, "registry", lambda: registry)
    result = CliRunner().invoke(cli, ["run", *SMALL, "--tracker", "recordr"])
    assert result.exit_code == 1 and "did you mean 'recorder'" in result.output
    assert not list_experiments(Roots.under(tmp_path))
    result = CliRunner().invoke(cli, ["run", *SMALL, "--tracker", "recorder", "--no-tracker"])
    assert result.exit_code == 2 and "--tracker and --no-tracker exclude each other" in result.output
    result = CliRunner().invoke(cli, ["run", *SMALL, "--tracker", "recorder"])
    assert result.exit_code == 0, result.output
    (query,) = [e for e in tracker.events if isinstance(e, QueryMade)]
    assert query.overview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (layout,) = list_experiments(Roots.under(tmp_path))
    assert query.overview.parent == layout.query_pictures(1)
    finished = [e for e in tracker.events if isinstance(e, ExperimentFinished)]
    assert len(finished) == 1 and not math.isnan(finished[0].mean_dice)
