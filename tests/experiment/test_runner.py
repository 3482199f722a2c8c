"""The loop runner with the nnU-Net side replaced by fakes (see fake_nnunet_steps.py): steps, files, state,
resumption after failures and kills, and the determinism of the loop files."""

import json

import numpy as np
import pytest
from experiment.fake_nnunet_steps import (
    FakeNnunetSteps,
    VesselNeverPredicted,
    labels_as_arrays,
    loop_file_bytes,
    small_config,
)

from nnactive_core.datasets.nnunet_raw import open_nnunet_raw
from nnactive_core.experiment.layout import LOCK_FILE, Roots
from nnactive_core.experiment.loop_warnings import DICE_FELL, NO_FOREGROUND, experiment_warnings
from nnactive_core.experiment.run import run_experiment
from nnactive_core.experiment.runner import RunError
from nnactive_core.experiment.setup import setup_experiment
from nnactive_core.experiment.state import DONE, TRAIN, load_state
from nnactive_core.patches.patch import load_loop, loop_files
from nnactive_core.plugins import registry


def run(tmp_path, monkeypatch, name="a", fake=None, **changes):
    fake = (fake or FakeNnunetSteps(root=tmp_path)).install(monkeypatch)
    roots = Roots(raw=tmp_path / "raw", data=tmp_path / name, results=tmp_path / name)
    layout = setup_experiment(small_config(**changes), roots)
    return layout, fake


def test_a_placement_strategy_runs_every_step_in_order(tmp_path, monkeypatch):
    layout, fake = run(tmp_path, monkeypatch)
    state = run_experiment(layout, display=False, echo=lambda line: None)
    assert state.step == DONE and state.loop == 2
    trainings = [c for c in fake.calls if c[0] == "train"]
    assert trainings == [("train", loop, fold) for loop in range(3) for fold in (0, 1)]
    assert ("predict",) not in fake.calls  # placement strategies never predict the pool
    assert [i for i, _ in loop_files(layout.raw)] == [0, 1, 2]
    for loop in range(3):
        costs = json.loads((layout.loop_results(loop) / "costs.json").read_text())
        assert costs["cumulative"]["patches"] == 10 * (loop + 1)
        assert (layout.loop_results(loop) / "summary.json").is_file()
        timings = json.loads((layout.loop_results(loop) / "timings.json").read_text())
        assert {"train_seconds", "validate_seconds", "preprocess_seconds"} <= set(timings)
    for loop in (0, 1):
        assert (layout.trainings / f"loop_{loop:03d}__FakeTrainer__nnUNetPlans__3d_fullres").is_dir()
    assert not (layout.results / LOCK_FILE).exists()


def test_only_cases_with_new_patches_are_preprocessed_and_relabelled(tmp_path, monkeypatch):
    layout, fake = run(tmp_path, monkeypatch)
    run_experiment(layout, display=False, echo=lambda line: None)
    base = open_nnunet_raw(layout.base_raw)
    preprocessed = [c[1] for c in fake.calls if c[0] == "preprocess"]
    for loop, cases in enumerate(preprocessed):
        new = load_loop(layout.raw / f"loop_{loop:03d}.json")
        assert cases == tuple(sorted({p.file.removesuffix(base.file_ending) for p in new}))
    annotated = json.loads((layout.results / "annotated_classes.json").read_text())
    patches = [p for _, path in loop_files(layout.raw) for p in load_loop(path)]
    assert set(annotated) == {p.file.removesuffix(base.file_ending) for p in patches}


def test_a_score_strategy_queries_through_the_engine(tmp_path, monkeypatch):
    if "pred_entropy" not in registry().names("strategy"):
        pytest.skip("nnactive-strategies-bald is not installed")
    layout, fake = run(tmp_path, monkeypatch, strategy="pred_entropy", query_steps=2)
    run_experiment(layout, display=False, echo=lambda line: None)
    assert fake.calls.count(("predict",)) == 1
    query = json.loads((layout.loop_results(0) / "query.json").read_text())
    assert sum(c["chosen"] for c in query["candidates"]) == 10
    assert len(load_loop(layout.raw / "loop_001.json")) == 10


def test_same_seed_same_loop_files_and_another_seed_differs(tmp_path, monkeypatch):
    first, _ = run(tmp_path, monkeypatch, name="a")
    run_experiment(first, display=False, echo=lambda line: None)
    second, _ = run(tmp_path, monkeypatch, name="b")
    run_experiment(second, display=False, echo=lambda line: None)
    third, _ = run(tmp_path, monkeypatch, name="c", seed=4)
    run_experiment(third, display=False, echo=lambda line: None)
    assert loop_file_bytes(first) == loop_file_bytes(second)
    assert loop_file_bytes(first) != loop_file_bytes(third)


def test_validation_warnings_are_recorded_per_loop_and_shown(tmp_path, monkeypatch):
    layout, _ = run(tmp_path, monkeypatch, fake=VesselNeverPredicted(root=tmp_path))
    lines = []
    run_experiment(layout, display=False, echo=lines.append)
    recorded = [(w.loop, w.kind, w.classes) for w in experiment_warnings(layout)]
    assert recorded == [
        (0, NO_FOREGROUND, ("vessel",)),
        (1, NO_FOREGROUND, ("vessel",)),
        (2, NO_FOREGROUND, ("vessel",)),
        (2, DICE_FELL, ("organ",)),
    ]
    last = lines.index(next(line for line in lines if line.startswith("loop 2 done (loops 0-2)")))
    assert "; mean Dice 0.2000; training " in lines[last]
    assert (
        lines[last + 1]
        == "warning: loop 2: the validation prediction has no voxel of vessel (in 1 of 1 cases): not learned"
    )
    assert lines[last + 2] == (
        "warning: loop 2: mean Dice fell from 0.3000 (loop 1) to 0.2000 although the budget grew; "
        "fell: organ -0.200"
    )


def test_a_failed_step_is_recorded_and_the_run_resumes_after_it(tmp_path, monkeypatch):
    reference, _ = run(tmp_path, monkeypatch, name="reference")
    run_experiment(reference, display=False, echo=lambda line: None)

    fake = FakeNnunetSteps(root=tmp_path, fail={"train:1:1": 1})
    layout, _ = run(tmp_path, monkeypatch, name="failing", fake=fake)
    with pytest.raises(RunError, match="loop 1 train: RuntimeError: injected failure in train:1:1"):
        run_experiment(layout, display=False, echo=lambda line: None)
    state = load_state(layout.results)
    assert (state.loop, state.step, state.folds_done) == (1, TRAIN, (0,))
    assert "injected failure" in state.last_error
    assert not (layout.results / LOCK_FILE).exists()
    assert "Traceback" in (layout.results / "log.txt").read_text()

    run_experiment(layout, display=False, echo=lambda line: None)
    assert [c for c in fake.calls if c[0] == "train" and c[1] == 1] == [
        ("train", 1, 0),
        ("train", 1, 1),
        ("train", 1, 1),
    ]
    assert load_state(layout.results).last_error is None
    assert loop_file_bytes(layout) == loop_file_bytes(reference)
    ours, theirs = labels_as_arrays(layout), labels_as_arrays(reference)
    assert ours.keys() == theirs.keys() and all(np.array_equal(ours[k], theirs[k]) for k in ours)


def test_a_finished_experiment_runs_nothing(tmp_path, monkeypatch):
    layout, fake = run(tmp_path, monkeypatch)
    run_experiment(layout, display=False, echo=lambda line: None)
    calls = len(fake.calls)
    assert run_experiment(layout, display=False, echo=lambda line: None).finished
    assert len(fake.calls) == calls


def test_a_missing_loop_file_is_detected_before_running(tmp_path, monkeypatch):
    from nnactive_core.experiment.state import StateError

    layout, _ = run(tmp_path, monkeypatch)
    (layout.raw / "loop_000.json").unlink()
    with pytest.raises(StateError, match="needs 1 loop file"):
        run_experiment(layout, display=False, echo=lambda line: None)


def test_a_resumed_run_removes_the_temporary_files_of_killed_writes_and_logs_them(tmp_path, monkeypatch):
    layout, _ = run(tmp_path, monkeypatch)
    left = [
        layout.results / ".state.json.a1b2c3d4.tmp",
        layout.loop_results(0) / ".costs.json.a1b2c3d4.tmp",
        layout.labels / ".demo_000.nii.gz.a1b2c3d4.tmp.nii.gz",
    ]
    kept = layout.results / "notes.tmp"
    for path in [*left, kept]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    run_experiment(layout, display=False, echo=lambda line: None)
    assert not any(path.exists() for path in left) and kept.read_text() == "half"
    log = layout.log_file.read_text()
    assert all(f"removed {path}" in log for path in left)
