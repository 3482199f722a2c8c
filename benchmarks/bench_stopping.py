"""When would the stopping signal have stopped, and what would it have cost?

Runs full experiments (no ``--stop-when``) on the demo dataset and on a second generated dataset (the
demo phantoms of another seed, 16 cases, so other structures and another class balance; both
printed), per strategy and seed, then applies each stopping rule to every run's recorded signal
(``loop_XXX/stability.json``) with the analysis's own code (:func:`nnactive_core.analysis.stopping.
stopping_table`): the loop after which the rule would have stopped the run, the budget and mean Dice
there, the full budget's Dice and the Dice given up. The runs are the shipped code path
(``run_experiment``), as ``nnactive run`` makes them.

Usage: ``python benchmarks/bench_stopping.py [--quick] [--loops 5] [--seeds 1 2] [--strategies random
pred_entropy] [--rules stable stable:0.9,1] [--output DIR] [--json FILE]``. ``--quick`` (what fits 2
CPU cores in about 20 minutes): 4 loops of 10 patches, one seed, 2 epochs per loop. Not run in CI;
``nox -s bench`` runs it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import attrs

DATASETS = {
    "demo": {},
    "second": {"seed": 1, "n_cases": 16, "n_validation": 4},
}
"""Dataset options over the demo's (``nnactive_core.experiment.demo.DEMO_DATA``); each in its own roots."""


def run_one(
    folder: Path,
    dataset: str,
    strategy: str,
    seed: int,
    loops: int,
    epochs: int | None,
    query_size: int | None,
) -> Path:
    from nnactive_core.experiment.demo import demo_config
    from nnactive_core.experiment.layout import Roots
    from nnactive_core.experiment.run import run_experiment
    from nnactive_core.experiment.setup import setup_experiment

    config = demo_config(strategy=strategy, loops=loops, seed=seed)
    overrides = dict(config.training_overrides)
    if epochs is not None:
        overrides["epochs"] = epochs
    config = attrs.evolve(
        config,
        dataset_options={**config.dataset_options, **DATASETS[dataset]},
        training_overrides=overrides,
        query_size=query_size or config.query_size,
    )
    layout = setup_experiment(config, Roots.under(folder / dataset))
    run_experiment(layout, display=False, echo=lambda line: print(line, file=sys.stderr))
    return layout.results


def class_balance(folder: Path, dataset: str) -> dict[str, float]:
    from nnactive_core.datasets.demo import class_fractions
    from nnactive_core.datasets.nnunet_raw import open_nnunet_raw
    from nnactive_core.experiment.demo import DEMO_DATASET
    from nnactive_core.experiment.layout import Roots

    return class_fractions(open_nnunet_raw(Roots.under(folder / dataset).base_raw(DEMO_DATASET)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="4 loops of 10 patches, one seed, 2 epochs per loop."
    )
    parser.add_argument("--query-size", type=int, default=None, help="[the demo's: 20]")
    parser.add_argument("--loops", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--epochs", type=int, default=None, help="Epochs per loop [the demo's: 40].")
    parser.add_argument("--strategies", nargs="+", default=None)
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=sorted(DATASETS))
    parser.add_argument("--rules", nargs="+", default=["stable", "stable:0.9,1", "stable:0.8,2"])
    parser.add_argument("--output", type=Path, help="Folder for the runs (default: a temporary one).")
    parser.add_argument("--json", type=Path, help="Also write the table here.")
    args = parser.parse_args(argv)
    loops = args.loops or (4 if args.quick else 5)
    seeds = args.seeds or ([1] if args.quick else [1, 2])
    epochs = args.epochs or (2 if args.quick else None)
    query_size = args.query_size or (10 if args.quick else None)

    import pandas as pd

    from nnactive_core.analysis.collect import read_experiment, results_table
    from nnactive_core.analysis.stopping import stopping_table
    from nnactive_core.experiment.stopping import parse_stop_when
    from nnactive_core.plugins import registry

    installed = registry().names("strategy")
    strategies = args.strategies or [s for s in ("random", "pred_entropy") if s in installed]
    rules = [parse_stop_when(rule) for rule in args.rules]
    folder = args.output or Path(tempfile.mkdtemp(prefix="nnactive_bench_stopping_"))
    started = time.monotonic()
    frames = []
    try:
        for dataset in args.datasets:
            for strategy in strategies:
                for seed in seeds:
                    results = run_one(folder, dataset, strategy, seed, loops, epochs, query_size)
                    table = results_table([read_experiment(results)]).assign(dataset=dataset)
                    signal = ", ".join(
                        f"{row.loop}: {row.stop_agreement:.3f}"
                        for row in table.itertuples()
                        if row.stop_agreement is not None and row.stop_agreement == row.stop_agreement
                    )
                    print(f"{dataset} {strategy} seed {seed}: agreement per loop {signal or '-'}", flush=True)
                    for rule in rules:
                        frames.append(stopping_table(table, rule).assign(dataset=dataset))
                        row = frames[-1].iloc[0]
                        print(
                            f"  {rule.spec}: stop after loop {row.stop_loop} of {row.loops - 1}, Dice "
                            f"{row.stop_dice:.3f} vs {row.final_dice:.3f} at the full budget "
                            f"(given up {row.given_up:.3f})",
                            flush=True,
                        )
            print(f"class balance of {dataset} (pool, share of voxels): {class_balance(folder, dataset)}")
        frame = pd.concat(frames, ignore_index=True)
        columns = ["dataset", "strategy", "seed", "rule", "loops", "stop_loop", "stop_budget", "stop_dice"]
        columns += ["final_budget", "final_dice", "given_up"]
        frame = frame[columns]
        frame["budget_saved_pct"] = 100 * (1 - frame["stop_budget"] / frame["final_budget"])
        print(
            f"epochs per loop: {epochs or 'the demo default (24)'}; query size: {query_size or 20}; "
            f"loops: {loops}; seeds: {seeds}"
        )
        print(frame.to_string(index=False, float_format=lambda value: f"{value:.3f}"))
        print(f"total wall time: {time.monotonic() - started:.0f} s")
        if args.json:
            from nnactive_core.io import atomic_write_json

            atomic_write_json(args.json, json.loads(frame.to_json(orient="records")))
    finally:
        if args.output is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
