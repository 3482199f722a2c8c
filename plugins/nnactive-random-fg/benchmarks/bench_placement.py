"""Time of one query per strategy, as a ratio to the core's plain ``random`` measured in the same run.

    python plugins/nnactive-random-fg/benchmarks/bench_placement.py [--cases 30] [--shape 64] [--query 100]

The pool is the core's synthetic oracle (balls of three foreground classes, two cases without
foreground); every query is a fresh ``place`` call, so the ground truth is read and cached anew.
"""

from __future__ import annotations

import argparse
import time

from nnactive_core.strategies.random_uniform import UniformRandom
from nnactive_core.testing.synthetic import SyntheticDataset, make_query_context
from nnactive_random_fg.plugin import STRATEGIES


def best_of(strategy, dataset, ctx, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        strategy.place(dataset, ctx)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=30)
    parser.add_argument("--shape", type=int, default=64)
    parser.add_argument("--query", type=int, default=100)
    parser.add_argument("--patch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    dataset = SyntheticDataset.generate(cases=args.cases, shape=(args.shape,) * 3, classes=4, empty_cases=2)
    ctx = make_query_context(dataset, query_size=args.query, patch_size=args.patch, loop=0)
    # scipy's first import is not part of a query
    STRATEGIES[0].place(dataset, ctx)
    baseline = best_of(UniformRandom(), dataset, ctx, args.repeats)
    setting = f"{args.query} patches of {args.patch}^3, {args.cases} cases of {args.shape}^3"
    print(f"{setting}, best of {args.repeats}")
    print(f"{'random':28s} {baseline * 1e3:8.1f} ms   1.0x")
    for strategy in STRATEGIES:
        seconds = best_of(strategy, dataset, ctx, args.repeats)
        print(f"{strategy.name:28s} {seconds * 1e3:8.1f} ms {seconds / baseline:6.1f}x")


if __name__ == "__main__":
    main()
