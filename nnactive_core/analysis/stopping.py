"""The stopping signal in the analysis: per setting, the signal of every run against its budget
(``stability.csv``, ``stability.png``) and where a stopping rule would have ended each run and the Dice
that would have cost (``stopping.csv``).

A run made without ``--stop-when`` records its signal all the same, so ``stopping.csv`` answers "had I
stopped with ``stable:T,K``, at which loop, and how much Dice would I have given up against the full
budget" for every run; a run that did stop early has nothing later to compare with (``given_up`` is
then empty). ``benchmarks/bench_stopping.py`` prints this table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from nnactive_core.analysis import plots
from nnactive_core.analysis.collect import BUDGET, MEAN_DICE, STOP_AGREEMENT, STOP_DISAGREEMENT
from nnactive_core.experiment.stopping import StopRule, would_stop_at

SIGNAL_COLUMNS = (
    "experiment",
    "strategy",
    "seed",
    "loop",
    BUDGET,
    MEAN_DICE,
    STOP_AGREEMENT,
    STOP_DISAGREEMENT,
)
STOPPING_COLUMNS = (
    "experiment",
    "strategy",
    "seed",
    "rule",
    "loops",
    "stop_loop",
    "stop_budget",
    "stop_dice",
    "final_budget",
    "final_dice",
    "given_up",
)


def has_signal(table) -> bool:
    return any(
        column in table.columns and table[column].notna().any()
        for column in (STOP_AGREEMENT, STOP_DISAGREEMENT)
    )


def signal_table(table):
    """The results table's signal columns, one row per (run, loop)."""
    return table[[column for column in SIGNAL_COLUMNS if column in table.columns]].copy()


def _value(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def stopping_table(table, rule: StopRule):
    """Per run: the loop after which ``rule`` stops it (its last loop where it never would), the
    budget and mean Dice there, the run's last loop's, and the Dice given up (last minus at stop)."""
    import pandas as pd

    rows = []
    for (experiment, strategy, seed), run in table.groupby(["experiment", "strategy", "seed"], sort=True):
        run = run.sort_values("loop")
        by_loop = {int(row["loop"]): row for _, row in run.iterrows()}
        last = max(by_loop)
        records = [
            {"agreement": _value(by_loop[loop][STOP_AGREEMENT])} if loop in by_loop else None
            for loop in range(last + 1)
        ]
        stop = would_stop_at(rule, records)
        at = by_loop[stop] if stop is not None else by_loop[last]
        final = by_loop[last]
        rows.append(
            {
                "experiment": experiment,
                "strategy": strategy,
                "seed": seed,
                "rule": rule.spec,
                "loops": last + 1,
                "stop_loop": stop if stop is not None else last,
                "stop_budget": at[BUDGET],
                "stop_dice": at[MEAN_DICE],
                "final_budget": final[BUDGET],
                "final_dice": final[MEAN_DICE],
                "given_up": final[MEAN_DICE] - at[MEAN_DICE],
            }
        )
    return pd.DataFrame(rows, columns=list(STOPPING_COLUMNS))


def signal_plot(table, path: Path, title: str, colors: Mapping[str, tuple], rule: StopRule) -> Path:
    """Two panels against the budget: the agreement with the previous loop (the rule's threshold
    dashed) and the ensemble disagreement; one line per run, coloured by strategy."""
    plt = plots.pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(2 * plots.PANEL_SIZE[0], plots.PANEL_SIZE[1]), squeeze=False)
    labelled = set()
    for (strategy, _seed), run in table.groupby(["strategy", "seed"], sort=True):
        run = run.sort_values("loop")
        for axis, column in zip(axes.flat, (STOP_AGREEMENT, STOP_DISAGREEMENT), strict=True):
            values = run[[BUDGET, column]].dropna()
            if values.empty:
                continue
            label = None if strategy in labelled else plots.display_name(strategy)
            axis.plot(
                values[BUDGET], values[column], marker="o", markersize=3, color=colors[strategy], label=label
            )
            if column == STOP_AGREEMENT:
                labelled.add(strategy)
    agreement, disagreement = axes.flat
    agreement.axhline(rule.threshold, color="black", linestyle="--", linewidth=1, label="stop threshold")
    agreement.set_title("Stop-set Dice with the previous loop")
    disagreement.set_title("Ensemble disagreement on the stop set")
    for axis in axes.flat:
        axis.set_xlabel("Budget (annotated patches, cumulative)")
        axis.set_ylim(0, 1.02)
        axis.grid(alpha=0.3)
    handles, labels = agreement.get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=4, frameon=False)
    figure.suptitle(title)
    figure.tight_layout()
    return plots.save_figure(figure, path)
