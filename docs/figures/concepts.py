"""Draws the pictures of docs/concepts.md into docs/img/concepts/ (``nox -s docs`` runs it before the
build, so a picture never drifts from this script). Illustrations on synthetic numbers, not results:
every curve comes from the formula the page states, with a fixed seed, and the PNGs carry no date, so
running the script again leaves committed files unchanged."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

OUTPUT = Path(__file__).resolve().parent.parent / "img" / "concepts"
STYLE = {"figure.dpi": 100, "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}
LABEL_COLOURS = ["#f0f0f0", "#d95f02", "#1b9e77", "#7570b3"]
IGNORE_COLOUR = "#9e9e9e"


def save(figure: plt.Figure, name: str) -> None:
    figure.tight_layout()
    figure.savefig(OUTPUT / name, metadata={"Software": None})
    plt.close(figure)


def phantom(size: int = 48) -> np.ndarray:
    """A slice with a large organ (1), a smaller one (2) and a lesion (3)."""
    y, x = np.mgrid[:size, :size]
    labels = np.zeros((size, size), dtype=int)
    labels[(y - 24) ** 2 / 15**2 + (x - 20) ** 2 / 12**2 < 1] = 1
    labels[(y - 14) ** 2 + (x - 36) ** 2 < 6**2] = 2
    labels[(y - 28) ** 2 + (x - 18) ** 2 < 2.5**2] = 3
    return labels


def partial_labels() -> None:
    labels = phantom()
    patches = [(4, 28, 12, 12), (20, 10, 12, 12), (34, 30, 12, 12)]  # (y, x, height, width)
    partial = np.full(labels.shape, 4)
    for y, x, h, w in patches:
        partial[y : y + h, x : x + w] = labels[y : y + h, x : x + w]
    colours = ListedColormap([*LABEL_COLOURS, IGNORE_COLOUR])
    figure, axes = plt.subplots(1, 2, figsize=(6.4, 3.2))
    for axis, image, title in (
        (axes[0], labels, "ground truth of one case"),
        (axes[1], partial, "what training sees: 3 queried patches"),
    ):
        axis.imshow(image, cmap=colours, vmin=0, vmax=4, interpolation="nearest")
        axis.set_title(title)
        axis.set_xticks([])
        axis.set_yticks([])
    for y, x, h, w in patches:
        axes[1].add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="black", linewidth=1.2))
    axes[1].set_xlabel("grey: the ignore label (not annotated)")
    save(figure, "partial-labels.png")


def budget() -> None:
    starting, query, loops = 20, 10, 5
    budgets = [starting + query * loop for loop in range(loops)]
    figure, axis = plt.subplots(figsize=(6.4, 2.6))
    axis.bar(0, starting, color="#7570b3", label="starting budget (loop 0, placed without a model)")
    for loop in range(1, loops):
        axis.bar(loop, budgets[loop - 1], color="#cccccc")
        axis.bar(loop, query, bottom=budgets[loop - 1], color="#1b9e77", label="query" if loop == 1 else None)
    for loop, total in enumerate(budgets):
        axis.text(loop, total + 1, str(total), ha="center")
    axis.set_xticks(range(loops), [f"loop {loop}" for loop in range(loops)])
    axis.set_ylabel("annotated patches")
    axis.set_ylim(0, budgets[-1] * 1.25)
    axis.legend(loc="upper left", frameon=False)
    axis.set_title("starting budget size 20, query size 10: one training per loop")
    save(figure, "budget.png")


def aubc() -> None:
    budgets = np.array([20, 30, 40, 50, 60])
    dice = np.array([0.42, 0.58, 0.66, 0.71, 0.73])
    weights = np.diff(budgets) / (budgets[-1] - budgets[0])
    area = float(np.sum(weights * (dice[1:] + dice[:-1]) / 2))
    figure, axis = plt.subplots(figsize=(6.4, 2.8))
    axis.fill_between(budgets, dice, color="#1b9e77", alpha=0.25, label=f"AUBC = {area:.3f}")
    axis.plot(budgets, dice, "o-", color="#1b9e77")
    axis.set_xlabel("budget (annotated patches)")
    axis.set_ylabel("mean Dice")
    axis.set_ylim(0, 1)
    axis.set_title("area under the budget curve, budget axis scaled to [0, 1]")
    axis.legend(loc="lower right", frameon=False)
    save(figure, "aubc.png")


def foreground_efficiency() -> None:
    c, x0, start = 0.85, 0.02, 0.35
    a = c - start
    x = np.linspace(x0, 0.4, 200)
    figure, axis = plt.subplots(figsize=(6.4, 2.8))
    for gamma, colour, name in ((25, "#1b9e77", "strategy A"), (8, "#d95f02", "strategy B")):
        axis.plot(x, c - a * np.exp(-gamma * (x - x0)), color=colour, label=f"{name}: gamma = {gamma}")
    axis.axhline(c, color="black", linestyle=":", linewidth=1)
    axis.text(0.4, c + 0.01, "c: full-data Dice", ha="right", va="bottom")
    axis.plot([x0], [start], "ko")
    axis.annotate("(x0, c - a): the starting budget", (x0, start), (0.06, 0.3))
    axis.set_xlabel("annotated share of the pool's foreground voxels")
    axis.set_ylabel("mean foreground Dice")
    axis.set_ylim(0.2, 0.95)
    axis.legend(loc="center right", frameon=False)
    axis.set_title("y = c - a exp(-gamma (x - x0)): higher gamma, Dice for less foreground")
    save(figure, "fg-efficiency.png")


def penalty_matrix() -> None:
    names = ["random", "pred_entropy", "ClaSP PE"]
    matrix = np.array([[np.nan, 0.6, 0.8], [0.2, np.nan, 0.4], [0.0, 0.0, np.nan]])
    figure, axis = plt.subplots(figsize=(4.6, 3.4))
    image = axis.imshow(matrix, cmap="Reds", vmin=0, vmax=1)
    for row in range(3):
        for column in range(3):
            if row != column:
                axis.text(column, row, f"{matrix[row, column]:.1f}", ha="center", va="center")
    axis.set_xticks(range(3), names)
    axis.set_yticks(range(3), names)
    axis.set_xlabel("column j (wins)")
    axis.set_ylabel("row i (losses)")
    axis.set_title("share of budgets where i is significantly worse than j")
    figure.colorbar(image, ax=axis, shrink=0.8)
    save(figure, "ppm.png")


def main() -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with plt.rc_context(STYLE):
        partial_labels()
        budget()
        aubc()
        foreground_efficiency()
        penalty_matrix()
    print(f"pictures written to {OUTPUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
