"""Loop overhead of the active-learning runner on the demo experiment.

Runs the demo experiment (``nnactive demo``'s config: demo phantoms, tiny profile) and reports per
loop, from the runner's ``timings.json``:

- the loop's wall time (sum of its steps), the time spent training and predicting (the validation step,
  which is ensemble prediction plus metrics, and the pool prediction inside the query step), and the
  share of the loop spent *outside* training and prediction (goal: <= 5%);
- how many cases were preprocessed, against the cases annotated so far and the pool: a loop only
  re-preprocesses the cases whose labels its new patches changed.

Usage: ``python benchmarks/bench_loop.py [--output DIR] [--loops 3] [--strategy NAME] [--seed N]
[--device cuda] [--json FILE] [--keep]``; per loop it also prints each step's seconds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

OVERHEAD_GOAL = 0.05
STEPS = ("preprocess", "train", "validate", "query", "annotate")


def loop_rows(layout, loops: int, pool_size: int) -> list[dict]:
    from nnactive_core.io import read_json
    from nnactive_core.patches.patch import load_loop, loop_file_name

    rows, annotated = [], set()
    for loop in range(loops):
        timings = read_json(layout.timings_file(loop))
        new = {p.file for p in load_loop(layout.raw / loop_file_name(loop))}
        annotated |= new
        wall = sum(timings.get(f"{step}_seconds", 0.0) for step in STEPS)
        training = sum(timings.get("training_seconds_per_fold", {}).values())
        prediction = timings.get("validate_seconds", 0.0) + timings.get("pool_prediction_seconds", 0.0)
        rows.append(
            {
                "loop": loop,
                "wall_s": wall,
                "training_s": training,
                "prediction_s": prediction,
                "overhead_s": wall - training - prediction,
                "overhead_share": (wall - training - prediction) / wall if wall else float("nan"),
                "preprocess_s": timings.get("preprocess_seconds", 0.0),
                "preprocessed_cases": timings.get("preprocessed_cases", 0),
                "cases_with_new_patches": len(new),
                "annotated_cases": len(annotated),
                "pool_cases": pool_size,
                "step_seconds": {step: timings.get(f"{step}_seconds", 0.0) for step in STEPS},
                "pool_prediction_s": timings.get("pool_prediction_seconds", 0.0),
            }
        )
    return rows


def print_table(rows: list[dict], total_wall: float) -> None:
    header = (
        "loop",
        "wall s",
        "train s",
        "predict s",
        "overhead s",
        "overhead %",
        "preproc. cases",
        "new-patch cases",
        "annotated",
        "pool",
    )
    print(" | ".join(header))
    for r in rows:
        print(
            " | ".join(
                [
                    str(r["loop"]),
                    f"{r['wall_s']:.1f}",
                    f"{r['training_s']:.1f}",
                    f"{r['prediction_s']:.1f}",
                    f"{r['overhead_s']:.1f}",
                    f"{100 * r['overhead_share']:.1f}",
                    str(r["preprocessed_cases"]),
                    str(r["cases_with_new_patches"]),
                    str(r["annotated_cases"]),
                    str(r["pool_cases"]),
                ]
            )
        )
    loops_wall = sum(r["wall_s"] for r in rows)
    overhead = sum(r["overhead_s"] for r in rows)
    print(
        f"loops: {loops_wall:.1f} s of {total_wall:.1f} s total wall (the rest: imports, dataset build, "
        "planning, setup)"
    )
    print(
        f"overhead outside training and prediction: {100 * overhead / loops_wall:.1f}% of the loops' wall "
        f"time (goal <= {100 * OVERHEAD_GOAL:.0f}%)"
    )
    only_changed = all(r["preprocessed_cases"] == r["cases_with_new_patches"] for r in rows)
    print(f"each loop preprocessed only the cases with new patches: {only_changed}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="Folder for the run (default: a temporary one).")
    parser.add_argument("--loops", type=int, default=3)
    parser.add_argument("--strategy", default=None)
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--device", help="Torch device of the experiment [cuda if available, else cpu].")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder.")
    args = parser.parse_args(argv)

    from nnactive_core.experiment.demo import demo_config
    from nnactive_core.experiment.layout import Roots
    from nnactive_core.experiment.run import run_experiment
    from nnactive_core.experiment.setup import open_dataset, setup_experiment
    from nnactive_core.plugins import registry

    folder = args.output or Path(tempfile.mkdtemp(prefix="nnactive_bench_loop_"))
    roots = Roots.under(folder)
    config = demo_config(strategy=args.strategy, loops=args.loops, seed=args.seed, device=args.device)
    started = time.monotonic()
    try:
        layout = setup_experiment(config, roots)
        run_experiment(layout, display=False, echo=lambda line: print(line, file=sys.stderr))
        total = time.monotonic() - started
        pool = len(open_dataset(config, roots, registry()).pool_cases())
        print(f"experiment {layout.name} ({config.strategy}, {args.loops} loops)")
        rows = loop_rows(layout, args.loops, pool)
        print_table(rows, total)
        steps = "; ".join(
            f"loop {r['loop']}: " + ", ".join(f"{k} {v:.1f} s" for k, v in r["step_seconds"].items())
            for r in rows
        )
        print(f"per step: {steps}")
        result = {"total_wall_s": total, "device": config.device, "loops": rows}
        print(json.dumps(result))
        if args.json:
            from nnactive_core.io import atomic_write_json

            atomic_write_json(args.json, result)
    finally:
        if args.output is None and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
