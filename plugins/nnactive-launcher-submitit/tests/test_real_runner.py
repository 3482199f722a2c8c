"""End to end with the real ``nnactive run`` on the built-in demo data (tiny profile): an experiment
launched through submitit's local executor is interrupted in the middle of training, requeued, and
resumes to the same loop files as an uninterrupted run of the same experiment (the ``random``
strategies draw from the experiment seed, so their loop files do not depend on the trained models)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import Roots
from nnactive_core.experiment.state import StateError, load_state
from nnactive_core.launchers.grid import build_jobs, prepare_experiments
from nnactive_core.launchers.local import LocalLauncher
from submitit.core.utils import pickle_load

from nnactive_launcher_submitit.launcher import SubmititLauncher

pytestmark = pytest.mark.e2e

CONFIG = ExperimentConfig(
    dataset="Dataset900_Demo",
    dataset_adapter="demo",
    dataset_options={"n_cases": 6, "n_validation": 2, "size": 32},
    patch_size=(8, 8, 8),
    query_size=3,
    query_steps=2,
    strategy="random",
    starting_budget="random",
    seed=1,
    folds=2,
    train_folds=1,
    training_profile="tiny",
    training_overrides={"epochs": 1, "iterations_per_epoch": 2, "val_iterations_per_epoch": 1},
    val_mirroring=False,
)


def parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def step_of(results: Path) -> tuple[int, str] | None:
    try:
        state = load_state(results)
    except StateError:
        return None
    return state.loop, state.step


def wait_for(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)


@pytest.mark.timeout(900)
def test_real_experiment_interrupted_in_training_resumes_to_the_same_loop_files(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    reference = Roots(raw=raw, data=tmp_path / "reference", results=tmp_path / "reference")
    requeued = Roots(raw=raw, data=tmp_path / "requeued", results=tmp_path / "requeued")
    for key, value in reference.env().items():
        monkeypatch.setenv(key, value)

    (layout,), _ = prepare_experiments([CONFIG], reference)
    (outcome,) = LocalLauncher().launch(build_jobs([layout], reference, tmp_path / "logs-reference"))
    assert outcome.state == "done", (tmp_path / "logs-reference" / f"{layout.name}.log").read_text()

    (interrupted,), _ = prepare_experiments([CONFIG], requeued)
    jobs = build_jobs([interrupted], requeued, tmp_path / "logs")
    options = {
        "cluster": "local",
        "folder": str(tmp_path / "submitit"),
        "time": "30",
        "signal_delay": "60",
        "stop_grace": "30",
        "wait": "false",
    }
    SubmititLauncher().launch(jobs, **options)
    # in the middle of training: the fold's trainer and its data-loader workers are running
    log_txt = interrupted.results / "log.txt"
    wait_for(lambda: log_txt.is_file() and "train fold 0 started" in log_txt.read_text(), seconds=400)
    assert step_of(interrupted.results) == (0, "train")
    runner = json.loads((interrupted.results / "lock.json").read_text())["pid"]
    os.kill(parent_pid(runner), signal.SIGUSR2)

    wait_for(lambda: list((tmp_path / "submitit").glob("*_result.pkl")), seconds=600)
    (result,) = (tmp_path / "submitit").glob("*_result.pkl")
    log = jobs[0].log_file.read_text()
    assert pickle_load(result) == ("success", interrupted.name), log
    assert "attempt 2:" in log
    assert load_state(interrupted.results).finished
    for loop in range(CONFIG.query_steps):
        name = f"loop_{loop:03d}.json"
        assert (interrupted.raw / name).read_bytes() == (layout.raw / name).read_bytes()
