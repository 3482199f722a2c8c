"""Figures of the analysis: learning curves, FG-efficiency fits, the pairwise penalty matrix and the
mean ranks. Every figure has a title, axis labels with units and a legend; strategies appear under
their display names in a colour that is the same in every figure of one analysis."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from nnactive_core.analysis.collect import BUDGET, MEAN_DICE
from nnactive_core.analysis.curves import BAND_LABEL
from nnactive_core.io import atomic_write_with

PANELS_PER_ROW = 4
PANEL_SIZE = (4.6, 3.6)


def display_name(strategy: str) -> str:
    """The strategy's own ``display_name`` (see ``nnactive_core.strategies.api``); its name where the
    strategy sets none or its plugin is not installed here."""
    from nnactive_core.plugins import UnknownNameError, registry
    from nnactive_core.strategies.api import display_name as strategy_display_name

    try:
        return strategy_display_name(registry().get("strategy", strategy))
    except UnknownNameError:
        return strategy


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def strategy_colors(strategies: Sequence[str]) -> dict[str, tuple]:
    """A fixed colour per strategy (sorted, so the same strategies get the same colours)."""
    plt = pyplot()
    ordered = sorted(set(strategies))
    palette = plt.get_cmap("tab10" if len(ordered) <= 10 else "tab20")
    return {name: palette(index % palette.N) for index, name in enumerate(ordered)}


def save_figure(figure, path: Path) -> Path:
    plt = pyplot()
    atomic_write_with(
        Path(path), lambda tmp: figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight"), suffix=".png"
    )
    plt.close(figure)
    return Path(path)


def column_title(column: str) -> str:
    if column == MEAN_DICE:
        return "Mean foreground Dice"
    return f"Dice: {column.removeprefix('dice_')}"


def learning_curves(
    curves,
    columns: Sequence[str],
    path: Path,
    title: str,
    colors: Mapping[str, tuple],
    x: str = BUDGET,
    x_label: str = "Budget (annotated patches, cumulative)",
    reference: float | None = None,
) -> Path:
    """One panel per Dice column: mean over seeds per strategy, with the 95% CI band inside [0, 1].
    ``curves`` comes from :func:`nnactive_core.analysis.curves.curve_table`; ``x`` is a column of it."""
    plt = pyplot()
    rows = math.ceil(len(columns) / PANELS_PER_ROW)
    per_row = min(len(columns), PANELS_PER_ROW)
    figure, axes = plt.subplots(
        rows, per_row, figsize=(PANEL_SIZE[0] * per_row, PANEL_SIZE[1] * rows), squeeze=False
    )
    for axis, column in zip(axes.flat, columns, strict=False):
        for strategy, curve in curves.groupby("strategy", sort=True):
            curve = curve.sort_values(x)
            mean = curve[f"{column}_mean"].to_numpy()
            low, high = curve[f"{column}_ci95_low"].to_numpy(), curve[f"{column}_ci95_high"].to_numpy()
            axis.plot(
                curve[x],
                mean,
                marker="o",
                markersize=3,
                color=colors[strategy],
                label=f"{display_name(strategy)} (n={int(curve['seeds'].max())})",
            )
            axis.fill_between(curve[x], low, high, color=colors[strategy], alpha=0.2, linewidth=0)
        if reference is not None and column == MEAN_DICE:
            axis.axhline(reference, color="black", linestyle="--", linewidth=1, label="full-data reference")
        axis.set_title(column_title(column))
        axis.set_xlabel(x_label)
        axis.set_ylabel("Dice on validation set (0-1)")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(columns) :]:
        axis.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=min(len(labels), 4),
        title=f"Strategy (n = seeds; {BAND_LABEL})",
        frameon=False,
    )
    figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def fg_efficiency(
    table, fits, path: Path, title: str, colors: Mapping[str, tuple], x: str, y: str = MEAN_DICE
) -> Path:
    """Every (seed, loop) point and each strategy's fitted curve; gamma ± std and R² in the legend."""
    from nnactive_core.analysis.fg_efficiency import Anchor, model

    plt = pyplot()
    figure, axis = plt.subplots(figsize=(7.5, 5))
    grid = np.linspace(table[x].min() / 100.0, table[x].max() / 100.0, 200)
    c = float("nan")
    for _, fit in fits.iterrows():
        strategy = fit["strategy"]
        points = table[table["strategy"] == strategy]
        anchor = Anchor(c=fit["c"], a=fit["a"], x0=fit["x0"])
        c = anchor.c
        axis.scatter(points[x], points[y], s=14, color=colors[strategy], alpha=0.7)
        if math.isnan(fit["gamma"]):
            label = f"{display_name(strategy)}: no fit ({fit['note']})"
        else:
            label = (
                f"{display_name(strategy)}: γ = {fit['gamma']:.3g} ± {fit['gamma_std']:.2g}, "
                f"R² = {fit['r2']:.2f}" + (" (poor fit)" if fit.get("poor_fit") else "")
            )
            axis.plot(grid * 100, model(grid, fit["gamma"], anchor), color=colors[strategy])
        axis.plot([], [], color=colors[strategy], marker="o", label=label)
    if not math.isnan(c):
        axis.axhline(
            c, color="black", linestyle="--", linewidth=1, label=f"c = {c:.3f} ({fits['c_source'].iloc[0]})"
        )
    axis.set_xlabel("Annotated foreground voxels (% of the pool's foreground)")
    axis.set_ylabel("Mean foreground Dice on validation set (0-1)")
    axis.set_title(f"{title}\nFG efficiency: y = c - a·exp(-γ(x - x0)), x as a fraction; higher γ is better")
    axis.grid(alpha=0.3)
    axis.legend(
        fontsize=8,
        loc="lower right",
        title="Strategy (points: seeds x loops; ± is the std of γ)",
        title_fontsize=8,
    )
    figure.tight_layout()
    return save_figure(figure, path)


def ppm_heatmap(frame, path: Path, title: str, note: str) -> Path:
    """The PPM table from :meth:`PairwisePenaltyMatrix.to_frame`, in percent."""
    plt = pyplot()
    values = frame.to_numpy(dtype=float) * 100
    n = values.shape[0]
    figure, axis = plt.subplots(figsize=(1.1 * n + 3.5, 0.8 * n + 2.5))
    image = axis.imshow(np.ma.masked_invalid(values), cmap="Reds", vmin=0, vmax=100)
    for i in range(n):
        for j in range(values.shape[1]):
            if not math.isnan(values[i, j]):
                axis.text(
                    j,
                    i,
                    f"{values[i, j]:.0f}",
                    ha="center",
                    va="center",
                    color="white" if values[i, j] > 60 else "black",
                    fontsize=9,
                )
    axis.axhline(n - 1.5, color="black", linewidth=1.5)
    axis.axvline(values.shape[1] - 1.5, color="black", linewidth=1.5)
    axis.set_xticks(range(values.shape[1]), [*frame.columns[:-1], "mean\n(losses)"], rotation=45, ha="right")
    axis.set_yticks(range(n), [*frame.index[:-1], "mean (wins)"])
    axis.set_xlabel("j: the better strategy")
    axis.set_ylabel("i: the worse strategy")
    axis.set_title(
        f"{title}\nCell (i, j): % of budgets where i is significantly worse than j\n{note}", fontsize=10
    )
    figure.colorbar(image, ax=axis, label="% of budgets")
    figure.tight_layout()
    return save_figure(figure, path)


def mean_ranks(result, path: Path, title: str, colors: Mapping[str, tuple]) -> Path:
    """Mean Friedman ranks with the Nemenyi critical difference drawn from the best strategy."""
    plt = pyplot()
    ranks = result.mean_ranks
    figure, axis = plt.subplots(figsize=(7.5, 0.5 * len(ranks) + 2))
    positions = np.arange(len(ranks))
    axis.scatter(ranks.to_numpy(), positions, color=[colors.get(s, "grey") for s in ranks.index], zorder=3)
    best = float(ranks.iloc[0])
    axis.axvspan(
        best,
        best + result.critical_difference,
        color="grey",
        alpha=0.2,
        label=f"Nemenyi CD = {result.critical_difference:.2f} (α = {result.alpha})",
    )
    for position, value in zip(positions, ranks.to_numpy(), strict=True):
        axis.annotate(
            f"{value:.2f}",
            (value, position),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
            fontsize=8,
        )
    axis.set_yticks(positions, [display_name(s) for s in ranks.index])
    axis.set_ylim(len(ranks) - 0.5, -0.7)
    axis.set_xlim(0.8, len(ranks) + 0.2)
    axis.set_xlabel("Mean rank over settings (1 = best)")
    axis.set_title(
        f"{title}\nFriedman χ² = {result.statistic:.2f}, p = {result.p_value:.3g}; "
        "strategies inside the band do not differ significantly from the best"
    )
    axis.grid(alpha=0.3, axis="x")
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=8, frameon=False)
    figure.tight_layout()
    return save_figure(figure, path)


def budget_gap(gaps, path: Path, title: str, colors: Mapping[str, tuple]) -> Path:
    """Per strategy the mean over seeds of charged / estimated cost per budgeted loop (1 = the
    estimate was right); ``gaps`` from :func:`nnactive_core.analysis.cost_axis.budget_gaps`."""
    plt = pyplot()
    figure, axis = plt.subplots(figsize=PANEL_SIZE)
    usable = gaps.dropna(subset=["estimated", "charged"])
    usable = usable[usable["estimated"] > 0].assign(ratio=lambda f: f["charged"] / f["estimated"])
    for strategy, group in usable.groupby("strategy", sort=True):
        mean = group.groupby("loop")["ratio"].mean()
        axis.plot(
            mean.index, mean.to_numpy(), marker="o", color=colors[strategy], label=display_name(strategy)
        )
    axis.axhline(1.0, color="black", linestyle="--", linewidth=1, label="estimate = charge")
    metric = ", ".join(sorted({str(m) for m in gaps["metric"].dropna()}))
    axis.set_xlabel("Loop")
    axis.set_ylabel(f"Charged / estimated cost ({metric})")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(frameon=False)
    figure.tight_layout()
    return save_figure(figure, path)
