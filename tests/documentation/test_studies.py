"""The study definitions under docs/studies stay runnable: each grid file expands to the experiments
its page describes, and its run script runs the same experiments."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nnactive_core.launchers.grid import expand, load_grid_file

pytestmark = pytest.mark.docs

STUDY = Path(__file__).parents[2] / "docs" / "studies" / "atlas-small"
STRATEGIES = {"random", "random-label2", "pred_entropy", "class_power_pe66_exp"}


def test_the_atlas_study_grid_is_four_strategies_by_three_seeds_on_the_small_profile():
    configs = expand(load_grid_file(STUDY / "study.toml"))
    assert {(config.strategy, config.seed) for config in configs} == {
        (strategy, seed) for strategy in STRATEGIES for seed in (12345, 3, 8)
    }
    for config in configs:
        assert (config.dataset, config.dataset_adapter, config.training_profile) == (
            "Dataset950_BrainTissue",
            "atlas",
            "small",
        )
        assert (config.query_size, config.query_steps, config.patch_size) == (5, 3, (20, 20, 20))
        assert config.warm_start and dict(config.training_overrides) == {"epochs": 80}


def test_the_run_script_runs_the_grids_strategies_and_settings():
    script = (STUDY / "run.sh").read_text()
    assert set(re.search(r"strategies=\(([^)]*)\)", script).group(1).split()) == STRATEGIES
    for option in (
        "--profile small",
        "--patch-size 20,20,20",
        "--query-size 5",
        "--loops 3",
        "--folds 3",
        "--warm-start",
    ):
        assert option in script, option
