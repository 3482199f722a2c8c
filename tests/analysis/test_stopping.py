"""Where a stopping rule would have ended each run, from the signal columns of a results table."""

import math

import pandas as pd
import pytest

from nnactive_core.analysis import stopping
from nnactive_core.analysis.collect import BUDGET, MEAN_DICE, STOP_AGREEMENT, STOP_DISAGREEMENT
from nnactive_core.experiment.stopping import StopRule


def run_rows(experiment, strategy, seed, dice, agreement):
    return [
        {
            "experiment": experiment,
            "strategy": strategy,
            "seed": seed,
            "loop": loop,
            BUDGET: 10 * (loop + 1),
            MEAN_DICE: value,
            STOP_AGREEMENT: signal,
            STOP_DISAGREEMENT: 0.1,
        }
        for loop, (value, signal) in enumerate(zip(dice, agreement, strict=True))
    ]


def test_stop_loop_budget_and_dice_given_up_per_run():
    table = pd.DataFrame(
        run_rows("a", "random", 1, [0.2, 0.4, 0.5, 0.55, 0.6], [None, 0.8, 0.92, 0.95, None])
        + run_rows("b", "random", 2, [0.1, 0.2, 0.3], [None, 0.5, None])
    )
    frame = stopping.stopping_table(table, StopRule(threshold=0.9, loops=2)).set_index("experiment")
    assert frame.loc["a", "stop_loop"] == 3 and frame.loc["a", "stop_budget"] == 40
    assert frame.loc["a", "given_up"] == pytest.approx(0.05) and frame.loc["a", "rule"] == "stable:0.9,2"
    # never stable: it runs to its last loop and gives nothing up
    assert frame.loc["b", "stop_loop"] == 2 and frame.loc["b", "given_up"] == 0
    assert frame.loc["b", "loops"] == 3 and frame.loc["b", "final_budget"] == 30


def test_signal_table_and_plot(tmp_path):
    table = pd.DataFrame(run_rows("a", "random", 1, [0.2, 0.4, 0.5], [None, 0.8, math.nan]))
    assert stopping.has_signal(table)
    assert not stopping.has_signal(table.assign(**{STOP_AGREEMENT: None, STOP_DISAGREEMENT: None}))
    assert list(stopping.signal_table(table).columns) == list(stopping.SIGNAL_COLUMNS)
    path = stopping.signal_plot(table, tmp_path / "stability.png", "t", {"random": (0, 0, 1)}, StopRule())
    assert path.is_file() and path.stat().st_size > 0
