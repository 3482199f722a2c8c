"""The end-to-end experiments: their settings, the ``nnactive`` command line in a subprocess and the
records the fixture hands to the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import attrs

from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import ExperimentLayout, Roots, list_experiments
from nnactive_core.io import TEMP_FILE_PATTERN

STRATEGY = "pred_entropy"
SECOND_STRATEGY = "class_power_pe66_exp"
DATA_OPTIONS = {"n_cases": 8, "n_validation": 2, "size": 32}
TRAINING = {"epochs": 2, "iterations_per_epoch": 2, "val_iterations_per_epoch": 0, "patch_size": [16, 16, 16]}
WRITE_KILL_POINT = "write:loop_001/costs.json"
"""Inside the annotate step's atomic write of the new costs: its temporary file is left behind."""
KILL_POINTS = (
    "train:0:1:1",  # mid-training: fold 0 finished, fold 1 after its first epoch
    "query:0:case:3",  # mid-query: four pool cases predicted
    "query:0:before-state",  # loop_001.json written, state not yet saved
    "annotate:0:labels-written",  # partial labels rewritten, costs and splits not yet
    WRITE_KILL_POINT,
)
TIMEOUT = 900
STOP_RULE = "stable:0.01,1"
"""Holds after loop 1 wherever the tiny models predict any foreground twice: the test is about what
stopping does, the benchmark about when a useful threshold stops."""


def run_arguments(strategy: str = STRATEGY, seed: int = 7) -> list[str]:
    options = {
        "--strategy": strategy,
        "--dataset": "Dataset900_Demo",
        "--dataset-adapter": "demo",
        "--patch-size": "4,8,8",
        "--query-size": "10",
        "--loops": "2",
        "--seed": str(seed),
        "--folds": "2",
        "--profile": "tiny",
        "--agg-stride": "2",
    }
    arguments = [item for pair in options.items() for item in pair]
    arguments += [f"--dataset-option={key}={value}" for key, value in DATA_OPTIONS.items()]
    arguments += [f"--train-option={key}={json.dumps(value)}" for key, value in TRAINING.items()]
    # no mirroring options: the tiny profile implies them (it trains without mirroring)
    return arguments


def nnactive(arguments: list[str], roots: Roots, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **roots.env(), "NNACTIVE_TEST_KILL_AT": kill_at or ""}
    return subprocess.run(
        [sys.executable, "-c", "from nnactive_core.cli.main import main; main()", *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@attrs.frozen(kw_only=True)
class Experiment:
    roots: Roots
    layout: ExperimentLayout
    config: ExperimentConfig
    outputs: list[subprocess.CompletedProcess]


@attrs.frozen(kw_only=True)
class E2ERuns:
    reference: Experiment
    resumed: Experiment
    temp_files: dict[str, list[Path]]
    """Kill point -> the temporary files of atomic writes in the resumed experiment's folders right
    after the run killed there."""


def temp_files(folder: Path) -> list[Path]:
    return sorted(path for path in Path(folder).rglob(".*") if TEMP_FILE_PATTERN.match(path.name))


def experiment_in(roots: Roots, outputs: list[subprocess.CompletedProcess]) -> Experiment:
    found = list_experiments(roots)
    assert len(found) == 1, "\n".join(o.stdout + o.stderr for o in outputs)
    return Experiment(
        roots=roots, layout=found[0], config=ExperimentConfig.load(found[0].results), outputs=outputs
    )


def read_json(path: Path):
    return json.loads(Path(path).read_text())
