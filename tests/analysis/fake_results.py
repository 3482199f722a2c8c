"""Fabricate experiment result folders as the loop runner writes them (small fake tables), for the
analysis tests (``from analysis.fake_results import ...``: ``tests`` is on pytest's pythonpath)."""

from __future__ import annotations

import json
from pathlib import Path

BASE = "Dataset900_Fake"
LABELS = {"background": 0, "liver": 1, "tumour": 2}
POOL = {
    "voxels": 100_000,
    "foreground_voxels": 2_000,
    "voxels_class_background": 98_000,
    "voxels_class_liver": 1_500,
    "voxels_class_tumour": 500,
}
PATCH_VOXELS = 1000


def _write(path: Path, payload) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))


def class_dice(mean: float) -> dict[str, float]:
    """Fake per-class Dice whose mean is ``mean``."""
    return {"1": mean + 0.05, "2": mean - 0.05}


def fake_experiment(
    root: Path,
    number: int,
    strategy: str,
    seed: int,
    dice: list[float],
    budgets: list[int],
    fg_voxels: list[int] | None = None,
    base: str = BASE,
    finished: bool = True,
    with_costs: bool = True,
    with_loop_files: bool = True,
    with_paths: bool = True,
    query_steps: int | None = None,
    **config,
) -> Path:
    """One experiment: ``dice[k]`` is loop k's mean Dice, ``budgets[k]`` its cumulative patches and
    ``fg_voxels[k]`` its cumulative annotated foreground voxels. Returns the results folder."""
    name = f"Fake__patch-10_10_10__sb-random__sbs-{budgets[0]}__qs-10__unc-{strategy}__seed-{seed}"
    folder = f"Dataset{number:03d}_{name}"
    results = root / base / "nnActive_results" / folder
    raw = root / base / "nnUNet_raw" / folder
    steps = query_steps if query_steps is not None else len(dice)
    _write(
        results / "config.json",
        {
            "dataset": base,
            "patch_size": [10, 10, 10],
            "query_size": 10,
            "query_steps": steps,
            "strategy": strategy,
            "seed": seed,
            "starting_budget": "random",
            "starting_budget_size": budgets[0],
            "training_profile": "tiny",
            "device": f"cpu-{seed}",
            **config,
        },
    )
    state = {"loop": len(dice) - 1, "step": "done" if finished else "query"}
    _write(results / "state.json", state)
    _write(results / "versions.json", {"nnactive-core": "0.1.0"})
    if with_paths:
        _write(results / "paths.json", {"raw": str(raw), "base_raw": str(root / "raw" / base)})
    _write(raw / "dataset.json", {"labels": {**LABELS, "ignore": 3}, "file_ending": ".nii.gz"})
    fg_voxels = fg_voxels or [20 * b for b in budgets]
    previous = 0
    for loop, (value, budget, fg) in enumerate(zip(dice, budgets, fg_voxels, strict=True)):
        per_class = class_dice(value)
        _write(
            results / f"loop_{loop:03d}" / "summary.json",
            {
                "foreground_mean": {"Dice": value},
                "mean": {key: {"Dice": v} for key, v in per_class.items()},
                "metric_per_case": [],
            },
        )
        if with_costs:
            cumulative = {"patches": budget, "voxels": budget * PATCH_VOXELS, "foreground_voxels": fg}
            _write(
                results / f"loop_{loop:03d}" / "costs.json",
                {
                    "loop": {"patches": budget - previous},
                    "cumulative": cumulative,
                    "pool": POOL,
                },
            )
        if with_loop_files:
            patches = [
                {"file": f"case_{i:03d}.nii.gz", "coords": [0, 0, 0], "size": [10, 10, 10]}
                for i in range(budget - previous)
            ]
            _write(raw / f"loop_{loop:03d}.json", {"patches": patches})
        previous = budget
    return results


def two_by_two(root: Path) -> dict[tuple[str, int], Path]:
    """Two strategies x two seeds on one setting; ``better`` beats ``random`` at every loop."""
    budgets = [10, 20, 30, 40]
    curves = {
        ("random", 1): [0.30, 0.40, 0.50, 0.55],
        ("random", 2): [0.32, 0.44, 0.50, 0.57],
        ("better", 1): [0.30, 0.50, 0.60, 0.70],
        ("better", 2): [0.32, 0.52, 0.66, 0.72],
    }
    return {
        key: fake_experiment(
            root,
            number,
            key[0],
            key[1],
            dice,
            budgets,
            fg_voxels=[b * (40 if key[0] == "better" else 20) for b in budgets],
        )
        for number, (key, dice) in enumerate(curves.items(), start=1)
    }
