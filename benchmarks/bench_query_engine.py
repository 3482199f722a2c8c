"""Benchmark of the patch query engine: voxel scores -> patch scores -> per-case selection.

Three implementations of the same work on the same synthetic pool, each measured in its own
subprocess (so peak RSS belongs to one measurement), cases generated on the fly one at a time:

- ``engine``: :func:`nnactive_core.query.engine.run_score_query` with predictive entropy.
- ``conv``: the established approach: the same voxel scores, box filter by convolution (scipy
  ``convolve`` in "valid" mode for stride 1, a strided torch ``conv3d`` with a uniform kernel
  otherwise; ``--conv torch`` forces conv3d), the whole grid sorted, then walked in Python with a
  per-candidate overlap test. It runs on the first ``--baseline-cases`` cases only (per-case times
  are compared), because its walk takes seconds per case.
- ``floor``: one numpy pass over each probability stack (entropy of the ensemble mean): the cost of
  merely reading the data, which no streaming implementation can beat.

Then peak RSS of the engine over ``--rss-cases`` pool sizes (flat = streaming works).

    python benchmarks/bench_query_engine.py [--cases 20 --size 128 --patch 32 ...] [--quick] [--json FILE]

Times exclude generating the synthetic probabilities (measured and subtracted).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MMAP_THRESHOLD_ENV = "MALLOC_MMAP_THRESHOLD_"
"""glibc raises its mmap threshold after freeing large blocks, so later ~16 MB arrays come from the
heap, which fragments: RSS creeps up over a run without any leak. A fixed threshold shows the
engine's own footprint; both are reported."""


def make_case(index: int, size: int, classes: int, members: int) -> np.ndarray:
    """members x classes x size^3 float32 softmax of smooth random logits (trilinear upsampling of
    coarse noise, so score maps are smooth and free of ties, like a real ensemble's)."""
    import torch

    generator = torch.Generator().manual_seed(index)
    coarse_size = max(2, size // 8)
    coarse = torch.randn((members, classes, coarse_size, coarse_size, coarse_size), generator=generator)
    shared = torch.randn((1, classes, coarse_size, coarse_size, coarse_size), generator=generator)
    logits = torch.nn.functional.interpolate(3 * shared + coarse, size=(size,) * 3, mode="trilinear")
    return torch.softmax(logits, dim=1).numpy()


def predictive_entropy_strategy():
    from nnactive_core.strategies.api import ScoreStrategy

    class PredictiveEntropy(ScoreStrategy):
        name = "bench-pe"
        description = "Entropy of the ensemble mean."

        def voxel_scores(self, probs, ctx):
            mean = probs.float().mean(0)
            return -(mean * mean.clamp_min(1e-12).log()).sum(0, keepdim=True)

    return PredictiveEntropy()


class Timer:
    def __init__(self):
        self.totals: dict[str, float] = {}

    def wrap(self, key, function):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.totals[key] = self.totals.get(key, 0.0) + time.perf_counter() - start

        return timed


def context(args):
    from nnactive_core.strategies.api import QueryContext

    return QueryContext(
        patch_size=(args.patch,) * 3,
        stride=args.stride,
        query_size=args.query_size,
        patches_per_case=args.patches_per_case,
        seed=0,
        loop=1,
        label_values=tuple(range(args.classes)),
        device="cpu",
    )


def warm_up(args) -> None:
    """One small case through every implementation first: imports and first-call set-up of torch and
    scipy are not part of the per-case cost."""
    from nnactive_core.query.engine import CaseInput, run_score_query

    small = argparse.Namespace(
        **{**vars(args), "size": 16, "patch": 4, "query_size": 1, "patches_per_case": 1}
    )
    probabilities = make_case(0, small.size, args.classes, args.members)
    case = CaseInput(file="warm.nii.gz", shape=(16,) * 3, load_probabilities=lambda: probabilities)
    run_score_query(predictive_entropy_strategy(), [case], context(small))
    aggregate_by_convolution(probabilities[0, 0], small.patch, 1, args.conv)
    aggregate_by_convolution(probabilities[0, 0], small.patch, 2, args.conv)


def run_engine(args, cases: int) -> dict:
    from nnactive_core.query import engine

    timer = Timer()
    for name in ("score_case", "aggregate_case", "select_greedy"):
        setattr(engine, name, timer.wrap(name, getattr(engine, name)))
    generate = timer.wrap("generate", make_case)
    inputs = (
        engine.CaseInput(
            file=f"case_{i:03d}.nii.gz",
            shape=(args.size,) * 3,
            load_probabilities=lambda i=i: generate(i, args.size, args.classes, args.members),
        )
        for i in range(cases)
    )
    start = time.perf_counter()
    result = engine.run_score_query(predictive_entropy_strategy(), inputs, context(args))
    total = time.perf_counter() - start - timer.totals["generate"]
    stages = {
        "scores": timer.totals["score_case"],
        "aggregate": timer.totals["aggregate_case"],
        "select": timer.totals["select_greedy"],
    }
    table = result.candidates
    picks = [[table.cases[c], *map(int, s)] for c, s in zip(table.case_index, table.start, strict=True)]
    return {"seconds": total, "stages": stages, "picks": picks}


def aggregate_by_convolution(scores: np.ndarray, patch: int, stride: int, backend: str) -> np.ndarray:
    import torch

    kernel = [min(patch, s) for s in scores.shape]
    if stride == 1 and backend == "scipy":
        from scipy.signal import convolve

        weights = np.full(kernel, 1.0 / np.prod(kernel), dtype=np.float32)
        return convolve(scores, weights, mode="valid")
    weights = torch.full((1, 1, *kernel), 1.0 / np.prod(kernel))
    with torch.no_grad():
        out = torch.nn.functional.conv3d(torch.from_numpy(scores)[None, None], weights, stride=stride)
    return out[0, 0].numpy()


def greedy_walk(patch_scores: np.ndarray, stride: int, kernel: list[int], quota: int) -> list[tuple]:
    """The established selection: the whole grid sorted, walked one candidate at a time."""
    accepted: list[tuple] = []
    for flat in np.argsort(-patch_scores, axis=None, kind="stable"):
        start = tuple(int(c) * stride for c in np.unravel_index(flat, patch_scores.shape))
        if all(
            any(a >= b + k or a + k <= b for a, b, k in zip(start, other, kernel, strict=True))
            for other in accepted
        ):
            accepted.append(start)
            if len(accepted) == quota:
                break
    return accepted


def run_conv(args, cases: int) -> dict:
    import torch

    from nnactive_core.query.engine import score_case

    strategy, ctx = predictive_entropy_strategy(), context(args)
    stages = {"scores": 0.0, "aggregate": 0.0, "select": 0.0}
    picks, candidates = [], []
    for index in range(cases):
        probabilities = make_case(index, args.size, args.classes, args.members)
        moments = [time.perf_counter()]
        with torch.no_grad():
            scores = score_case(strategy, probabilities, ctx)[0]
        del probabilities
        moments.append(time.perf_counter())
        patch_scores = aggregate_by_convolution(scores, args.patch, args.stride, args.conv)
        moments.append(time.perf_counter())
        kernel = [min(args.patch, s) for s in scores.shape]
        for start in greedy_walk(patch_scores, args.stride, kernel, args.patches_per_case):
            candidates.append(float(patch_scores[tuple(s // args.stride for s in start)]))
            picks.append([f"case_{index:03d}.nii.gz", *start])
        moments.append(time.perf_counter())
        for key, begin, end in zip(stages, moments, moments[1:], strict=False):
            stages[key] += end - begin
    start = time.perf_counter()
    np.argsort(-np.asarray(candidates), kind="stable")[: args.query_size]
    return {"seconds": sum(stages.values()) + time.perf_counter() - start, "stages": stages, "picks": picks}


def run_floor(args, cases: int) -> dict:
    seconds = 0.0
    for index in range(cases):
        probabilities = make_case(index, args.size, args.classes, args.members)
        start = time.perf_counter()
        mean = probabilities.mean(axis=0)
        float(-(mean * np.log(np.maximum(mean, 1e-12))).sum())
        seconds += time.perf_counter() - start
        del probabilities
    return {"seconds": seconds, "stages": {}}


WORKERS = {"engine": run_engine, "conv": run_conv, "floor": run_floor}


def worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    warm_up(args)
    result = WORKERS[args.worker](args, args.worker_cases)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


WORKER_SETTINGS = (
    "size",
    "classes",
    "members",
    "patch",
    "stride",
    "query_size",
    "patches_per_case",
    "conv",
    "threads",
)
"""Options a measurement subprocess gets from the parent, and the settings the report records."""


def measure(args, mode: str, cases: int, fixed_mmap_threshold: bool = False) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--worker-cases", str(cases)]
    for option in WORKER_SETTINGS:
        command += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    env = dict(os.environ)
    if fixed_mmap_threshold:
        env[MMAP_THRESHOLD_ENV] = str(1 << 20)
    run = subprocess.run(command, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise SystemExit(f"{mode} worker failed:\n{run.stderr}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    result.update(mode=mode, cases=cases, per_case=result["seconds"] / cases, fixed_mmap=fixed_mmap_threshold)
    return result


def agreement(engine: dict, conv: dict) -> float:
    """Share of the baseline's per-case picks that the engine picked too (both exact up to rounding)."""
    cases = {pick[0] for pick in conv["picks"]}
    mine = {tuple(p) for p in engine["picks"] if p[0] in cases}
    theirs = {tuple(p) for p in conv["picks"]}
    return len(mine & theirs) / max(1, len(theirs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--size", type=int, default=128, help="Edge of the cubic cases.")
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--patch", type=int, default=32, help="Edge of the cubic patches.")
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--query-size", type=int, default=20)
    parser.add_argument("--patches-per-case", type=int, default=20)
    parser.add_argument(
        "--baseline-cases", type=int, default=4, help="Cases the convolution baseline runs on."
    )
    parser.add_argument(
        "--rss-cases", type=int, nargs=2, default=(10, 40), help="Pool sizes for the RSS check."
    )
    parser.add_argument("--conv", choices=("scipy", "torch"), default="scipy")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads in every measurement (numpy uses one)."
    )
    parser.add_argument("--quick", action="store_true", help="Small sizes: a smoke run in seconds.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--worker-cases", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if args.quick:
        args.cases, args.size, args.patch, args.baseline_cases, args.rss_cases = 4, 48, 16, 2, (2, 8)
        args.query_size, args.patches_per_case = 4, 4

    runs = [
        measure(args, "floor", args.cases),
        measure(args, "engine", args.cases),
        measure(args, "conv", min(args.cases, args.baseline_cases)),
    ]
    rss = [measure(args, "engine", n, fixed) for fixed in (False, True) for n in args.rss_cases]
    floor, engine, conv = runs
    summary = {
        "settings": {k: getattr(args, k) for k in ("cases", *WORKER_SETTINGS)},
        "conv_over_engine": conv["per_case"] / engine["per_case"],
        "conv_over_engine_aggregation": conv["stages"]["aggregate"]
        / conv["cases"]
        / (engine["stages"]["aggregate"] / engine["cases"]),
        "conv_over_engine_selection": conv["stages"]["select"]
        / conv["cases"]
        / (engine["stages"]["select"] / engine["cases"]),
        "engine_over_floor": engine["per_case"] / floor["per_case"],
        "picks_agreeing_with_conv": agreement(engine, conv),
        "rss_mb": {str(r["cases"]): r["peak_rss_mb"] for r in rss if not r["fixed_mmap"]},
        "rss_mb_fixed_mmap_threshold": {str(r["cases"]): r["peak_rss_mb"] for r in rss if r["fixed_mmap"]},
    }
    print(
        f"{args.cases} cases of {args.size}^3, {args.classes} classes, {args.members} members; patch "
        f"{args.patch}^3, stride {args.stride}, {args.patches_per_case} per case, query {args.query_size}"
    )
    header = ("run", "cases", "s/case", "scores", "aggregate", "select", "peak RSS MB")
    print("{:8} {:>5} {:>8} {:>8} {:>9} {:>8} {:>11}".format(*header))
    for run in [*runs, *rss]:
        stage = {k: v / run["cases"] for k, v in run["stages"].items()}
        cells = [f"{stage[k]:8.3f}" if k in stage else f"{'-':>8}" for k in ("scores", "aggregate", "select")]
        name = run["mode"] + ("*" if run["fixed_mmap"] else "")
        print(
            f"{name:8} {run['cases']:5d} {run['per_case']:8.3f} {cells[0]} {cells[1]:>9} {cells[2]} "
            f"{run['peak_rss_mb']:11.0f}"
        )
    print(
        f"conv / engine per case: {summary['conv_over_engine']:.1f}x (aggregation "
        f"{summary['conv_over_engine_aggregation']:.1f}x, "
        f"selection {summary['conv_over_engine_selection']:.1f}x)"
    )
    print(f"engine / floor per case: {summary['engine_over_floor']:.2f}x")
    print(f"baseline picks also picked by the engine: {100 * summary['picks_agreeing_with_conv']:.0f}%")
    low, high = args.rss_cases
    for key, label in (
        ("rss_mb", "default allocator"),
        ("rss_mb_fixed_mmap_threshold", "fixed mmap threshold (*)"),
    ):
        print(
            f"engine peak RSS, {label}: {summary[key][str(low)]:.0f} MB for {low} cases, "
            f"{summary[key][str(high)]:.0f} MB for {high} cases"
        )
    if args.json:
        from nnactive_core.io import atomic_write_json

        for run in [*runs, *rss]:
            run.pop("picks", None)
        atomic_write_json(args.json, {"summary": summary, "runs": runs, "rss": rss})


if __name__ == "__main__":
    main()
