"""Fabricated experiment folders for grid and status tests: what ``create_experiment`` writes
(folder, ``config.json``, ``state.json``) without the registry, datasets or nnU-Net."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import (
    ExperimentLayout,
    Roots,
    experiment_folder_name,
    find_experiment,
    reserve_experiment_id,
)
from nnactive_core.experiment.state import State, save_state

FAKE_RUNNER = Path(__file__).with_name("fake_runner.py")
FAKE_RUN_COMMAND = (sys.executable, str(FAKE_RUNNER), "run")


def config(strategy: str = "random", seed: int = 1, query_size: int = 4, **fields) -> ExperimentConfig:
    values = {"dataset": "Dataset004_Hippocampus", "patch_size": [4, 4, 4], "query_steps": 3, **fields}
    return ExperimentConfig(strategy=strategy, seed=seed, query_size=query_size, **values)


def create(roots: Roots, experiment: ExperimentConfig, state: State | None = State()) -> ExperimentLayout:
    existing = find_experiment(roots, experiment.name())
    if existing is not None:
        return existing
    number = reserve_experiment_id(roots, experiment.dataset)
    layout = ExperimentLayout(
        roots=roots, base=experiment.dataset, folder=experiment_folder_name(number, experiment.name())
    )
    layout.results.mkdir(parents=True)
    if state is not None:
        save_state(layout.results, state)
    experiment.save(layout.results)
    return layout


def fake_prepare(configs: Sequence[ExperimentConfig], roots: Roots, *, full_setup: bool = False):
    """Drop-in for ``grid.prepare_experiments``."""
    return [create(roots, experiment) for experiment in configs], {}
