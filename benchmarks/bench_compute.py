"""Dice per compute: from-scratch folds vs warm-started folds vs a snapshot ensemble.

Runs the demo experiment (``nnactive demo``'s settings: phantoms, tiny profile, 2 folds) once per
(dataset, strategy, seed, mode), with modes

- ``scratch``: the established loop, every fold of every loop trained from scratch;
- ``warm``: ``warm_start`` (loops after the first train ``warm_epochs`` from the previous loop's folds);
- ``snapshots``: ``ensemble = "snapshots"`` (one training per loop, its ``snapshots`` cycle ends as
  members),

and reports per loop the mean and per-class validation Dice, training seconds and the loop's total
seconds, and per run the area under the budget curve (AUBC over cumulative patches) and the total
training and experiment seconds. Figures are ratios against ``scratch`` of the same (dataset,
strategy, seed) in this run; the seed-to-seed spread of ``scratch`` AUBC is the yardstick of "equal
quality". Goal: ``warm`` AUBC within that spread at <= 50% of scratch's training time.

Datasets: ``demo`` (the demo's phantoms) and ``demo-b`` (other phantoms: generator seed 1, 32 cases of
40^3, so other shapes and another share of each class per case; the demo adapter has no option that
sets class frequencies directly).

Usage: ``python benchmarks/bench_compute.py [--quick] [--epochs N] [--loops 3] [--output DIR]
[--json FILE] [--plot FILE] [--device cuda]``. ``--quick``: the demo dataset, pred_entropy, one seed
and 6 instead of the demo's 40 epochs (what fits a shared CPU in about 20 minutes; too short to say
much about quality). The full run (2 datasets x 2 strategies x 2 seeds x 3 modes = 24 experiments of 3 loops)
is one command for a machine with time.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

MODES = {
    "scratch": {},
    "warm": {"warm_start": True},
    "snapshots": {"ensemble": "snapshots"},
}
DATASETS = {
    "demo": ("Dataset900_Demo", None),
    "demo-b": ("Dataset901_DemoB", {"seed": 1, "n_cases": 32, "n_validation": 6, "size": 40}),
}
STRATEGIES = ("pred_entropy", "random-label2")
SEEDS = (12345, 1)
TIME_GOAL = 0.5
QUICK_EPOCHS = 6
"""``--quick`` trains 6 epochs, the demo 40: on 2 shared CPU cores a demo fold of 24 epochs took 380 s."""


def experiment_config(
    dataset: str, strategy: str, seed: int, mode: str, loops: int, device: str | None, epochs: int | None
):
    import attrs

    from nnactive_core.experiment.demo import demo_config

    config = demo_config(strategy=strategy, loops=loops, seed=seed, device=device)
    folder, options = DATASETS[dataset]
    changes = dict(MODES[mode])
    if epochs is not None:
        changes["training_overrides"] = {**config.training_overrides, "epochs": epochs}
    if options is not None:
        changes.update(dataset=folder, dataset_options=options)
    return attrs.evolve(config, **changes)


def loop_rows(layout, config, dataset) -> list[dict]:
    """Per loop: cumulative patches, mean and per-class Dice, training and total seconds."""
    from nnactive_core.experiment.loop_warnings import class_dice, label_names, mean_dice
    from nnactive_core.io import read_json

    names = label_names(dataset.labels)
    rows = []
    for loop in range(config.query_steps):
        summary = read_json(layout.summary_file(loop), expect=dict)
        timings = read_json(layout.timings_file(loop), expect=dict)
        costs = read_json(layout.costs_file(loop), expect=dict)
        total = sum(value for key, value in timings.items() if key.endswith("_seconds"))
        rows.append(
            {
                "loop": loop,
                "patches": costs["cumulative"]["patches"],
                "mean_dice": mean_dice(summary, names).value,
                "dice": class_dice(summary, names),
                "training_s": float(sum(timings.get("training_seconds_per_fold", {}).values())),
                "loop_s": float(total),
            }
        )
    return rows


def run_one(roots, config) -> dict:
    from nnactive_core.analysis.aubc import aubc
    from nnactive_core.experiment.run import run_experiment
    from nnactive_core.experiment.setup import open_dataset, setup_experiment
    from nnactive_core.plugins import registry

    started = time.monotonic()
    layout = setup_experiment(config, roots)
    run_experiment(layout, display=False, echo=lambda line: print(line, file=sys.stderr))
    total = time.monotonic() - started
    rows = loop_rows(layout, config, open_dataset(config, roots, registry()))
    return {
        "name": layout.name,
        "loops": rows,
        "aubc": aubc([r["patches"] for r in rows], [r["mean_dice"] for r in rows]),
        "training_s": sum(r["training_s"] for r in rows),
        "total_s": total,
    }


def spread(values: list[float]) -> float:
    """Sample standard deviation (NaN for fewer than two values)."""
    if len(values) < 2:
        return math.nan
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def print_tables(results: list[dict]) -> None:
    print(
        "per loop: dataset | strategy | seed | mode | loop | patches | mean Dice | per-class Dice | "
        "train s | loop s"
    )
    for r in results:
        for row in r["run"]["loops"]:
            classes = " ".join(f"{name}={value:.3f}" for name, value in row["dice"].items())
            print(
                f"{r['dataset']} | {r['strategy']} | {r['seed']} | {r['mode']} | {row['loop']} | "
                f"{row['patches']} | {row['mean_dice']:.3f} | {classes} | {row['training_s']:.1f} | "
                f"{row['loop_s']:.1f}"
            )
    print()
    print(
        "per run: dataset | strategy | seed | mode | AUBC | AUBC / scratch | train s | train / scratch | "
        "total s | total / scratch"
    )
    for r in results:
        base = r["baseline"]
        print(
            f"{r['dataset']} | {r['strategy']} | {r['seed']} | {r['mode']} | {r['run']['aubc']:.3f} | "
            f"{r['run']['aubc'] / base['aubc']:.3f} | {r['run']['training_s']:.1f} | "
            f"{r['run']['training_s'] / base['training_s']:.3f} | {r['run']['total_s']:.1f} | "
            f"{r['run']['total_s'] / base['total_s']:.3f}"
        )


def verdicts(results: list[dict]) -> list[str]:
    """Per (dataset, strategy) and mode: the AUBC difference to scratch against scratch's seed spread,
    and the training-time ratio against the goal."""
    lines = []
    groups = sorted({(r["dataset"], r["strategy"]) for r in results})
    for dataset, strategy in groups:
        runs = [r for r in results if (r["dataset"], r["strategy"]) == (dataset, strategy)]
        scratch = [r["run"]["aubc"] for r in runs if r["mode"] == "scratch"]
        std = spread(scratch)
        for mode in [m for m in MODES if m != "scratch"]:
            chosen = [r for r in runs if r["mode"] == mode]
            if not chosen:
                continue
            difference = sum(r["run"]["aubc"] - r["baseline"]["aubc"] for r in chosen) / len(chosen)
            time_ratio = sum(r["run"]["training_s"] for r in chosen) / sum(
                r["baseline"]["training_s"] for r in chosen
            )
            within = "n/a (one seed)" if math.isnan(std) else str(abs(difference) <= std)
            lines.append(
                f"{dataset} {strategy} {mode}: AUBC - scratch = {difference:+.3f} (scratch seed std "
                f"{std:.3f}; within: {within}); training time {time_ratio:.2f} x scratch "
                f"(goal <= {TIME_GOAL}: {time_ratio <= TIME_GOAL})"
            )
    return lines


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["dataset"], r["strategy"]) for r in results})
    figure, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    colours = dict(zip(MODES, ("tab:blue", "tab:orange", "tab:green"), strict=True))
    for axis, (dataset, strategy) in zip(axes[0], groups, strict=True):
        for r in results:
            if (r["dataset"], r["strategy"]) != (dataset, strategy):
                continue
            seconds, elapsed = [], 0.0
            for row in r["run"]["loops"]:
                elapsed += row["training_s"]
                seconds.append(elapsed)
            dice = [row["mean_dice"] for row in r["run"]["loops"]]
            axis.plot(seconds, dice, "o-", color=colours[r["mode"]], label=f"{r['mode']} seed {r['seed']}")
        axis.set(title=f"{dataset}, {strategy}", xlabel="cumulative training s", ylabel="mean Dice")
        axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="demo dataset, pred_entropy, one seed")
    parser.add_argument("--loops", type=int, default=3)
    parser.add_argument(
        "--epochs",
        type=int,
        help=f"Epochs of a from-scratch fold [default: the demo's, {QUICK_EPOCHS} with --quick]",
    )
    parser.add_argument("--output", type=Path, help="Folder for the runs (default: a temporary one).")
    parser.add_argument("--device", help="Torch device of the experiments [cuda if available, else cpu].")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--plot", type=Path, help="Dice-vs-training-time plot (PNG) [default: none].")
    args, _ = parser.parse_known_args(argv)  # nox -s bench passes its arguments to every benchmark

    from nnactive_core.experiment.layout import Roots
    from nnactive_core.plugins import registry

    datasets = ["demo"] if args.quick else list(DATASETS)
    strategies = STRATEGIES[:1] if args.quick else STRATEGIES
    seeds = SEEDS[:1] if args.quick else SEEDS
    epochs = args.epochs if args.epochs is not None else (QUICK_EPOCHS if args.quick else None)
    installed = set(registry().names("strategy"))
    strategies = [s for s in strategies if s in installed]
    if not strategies:
        print(f"none of {', '.join(STRATEGIES)} is installed: skipped", file=sys.stderr)
        return 0
    folder = args.output or Path(tempfile.mkdtemp(prefix="nnactive_bench_compute_"))
    roots = Roots.under(folder)  # the modes' names differ, so they share the datasets and their plans
    results = []
    started = time.monotonic()
    try:
        for dataset in datasets:
            for strategy in strategies:
                for seed in seeds:
                    baseline = None
                    for mode in MODES:
                        config = experiment_config(
                            dataset, strategy, seed, mode, args.loops, args.device, epochs
                        )
                        run = run_one(roots, config)
                        baseline = baseline or run
                        results.append(
                            {"dataset": dataset, "strategy": strategy, "seed": seed, "mode": mode, "run": run}
                        )
                        results[-1]["baseline"] = baseline
                        print(
                            f"done: {run['name']}: AUBC {run['aubc']:.3f}, training {run['training_s']:.0f} s"
                            f", total {run['total_s']:.0f} s",
                            flush=True,
                        )
        print_tables(results)
        print()
        for line in verdicts(results):
            print(line)
        print(f"benchmark wall time {time.monotonic() - started:.0f} s")
        if args.plot:
            plot(results, args.plot)
        if args.json:
            from nnactive_core.io import atomic_write_json

            atomic_write_json(args.json, [{k: v for k, v in r.items() if k != "baseline"} for r in results])
    finally:
        if args.output is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
