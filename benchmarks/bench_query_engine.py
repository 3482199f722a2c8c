"""Benchmark of the query: the registered strategies through the shipped path, against the floor and
against the established implementation's per-image query path, and its memory against the pool size.

A pool of ``--cases`` stacks (members x classes x size^3, seeded smooth random logits through a
softmax) is written as ``<case>.npy`` files once. Every measurement runs in its own subprocess (its
peak RSS and its imports are its own); timed runs alternate their order between repeats and report
medians, because other processes load the machine.

1. In process, per case: ``floor`` = read + member mean + entropy of every case in one numpy pass
   (``np.load``, ``mean(axis=0)``, ``-(p log p).sum()``: what merely touching the data costs), against
   each strategy of ``--strategies`` taken from the plugin registry and run by the engine
   (``run_score_query``) on ``CaseInput`` s that read the files as ``nnactive query`` does. Twice: on
   the thread budget (:mod:`nnactive_core.threads`) and on one thread (``OMP_NUM_THREADS=1``).
2. Whole process, wall clock from start to exit: ``nnactive query --strategy pred_entropy`` against
   ``established``, a re-creation of the established per-image query path (behaviour.md 7.4): torch
   imported, each case loaded, PE in torch, the box filter by scipy's "valid" convolution, every grid
   position a candidate record ``{coords, size, score}`` in a Python list sorted best first, walked
   with the overlap check against the case's accepted patches until the case's quota, the query the
   best ``query_size`` of all accepted records. Faithfulness is checked in every run: both write
   their picks, and the benchmark reports whether they are identical (they must be: same scores, the
   same greedy rule; only the float32 FFT of the convolution adds rounding noise).
3. Peak RSS of the engine (``pred_entropy`` and ``class_power_pe66_exp``) over ``--rss-cases`` pool
   sizes (the files are cycled), with the default allocator, for stacks read as ``nnactive query``
   does (memory-mapped) and for stacks in RAM (``np.load``, as pool prediction hands them over).
4. Spilled stacks: stacks larger than ``--bound-mb`` given as copy-on-write memory maps (prediction's
   spill format): peak RSS against the bound, for 10 / 40 cases and for 5 / 20 members (a 4x larger
   stack), so flat in pool size and independent of the stack size.

    python benchmarks/bench_query_engine.py [--cases 16 --size 96 --members 5 --patch 32 ...]
        [--dtype float32] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STRATEGIES = ("pred_entropy", "mutual_information", "class_power_pe66_exp")
PARTS = ("inprocess", "process", "rss", "spilled")


def make_case(index: int, size: int, classes: int, members: int, dtype: str) -> np.ndarray:
    """members x classes x size^3 softmax of smooth random logits (trilinear upsampling of coarse noise
    shared by the members plus each member's own), so members agree in places and score maps are
    smooth and free of ties, like a real ensemble's."""
    from scipy.ndimage import zoom

    rng = np.random.default_rng(index)
    coarse = max(2, size // 8)
    logits = 3 * rng.normal(size=(1, classes, *(coarse,) * 3)) + rng.normal(
        size=(members, classes, *(coarse,) * 3)
    )
    logits = zoom(logits, (1, 1, *(size / coarse,) * 3), order=1)[:, :, :size, :size, :size]
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return probabilities.astype(dtype)


def write_pool(folder: Path, cases: int, size: int, classes: int, members: int, dtype: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(cases):
        path = folder / f"case_{index:03d}.npy"
        np.save(path, make_case(index, size, classes, members, dtype))
        paths.append(path)
    return paths


# --- measurement workers (each runs in its own subprocess) -------------------------------------------


def context(settings: dict, query_size: int | None = None):
    from nnactive_core.strategies.api import QueryContext

    return QueryContext(
        patch_size=(settings["patch"],) * 3,
        stride=(settings["stride"],) * 3,
        query_size=query_size or settings["query_size"],
        patches_per_case=settings["patches_per_case"],
        seed=0,
        loop=1,
        query_steps=3,
        label_values=tuple(range(settings["classes"])),
        device=settings["device"],
    )


def engine_inputs(paths: list[Path], reader: str):
    from nnactive_core.cli.query import probability_shape, read_probabilities
    from nnactive_core.query.engine import CaseInput

    load = {
        "mapped": read_probabilities,  # what nnactive query does
        "ram": lambda path: np.load(path),  # a stack in RAM, as pool prediction hands it over
        "spilled": lambda path: np.load(path, mmap_mode="c"),  # prediction's spill
    }[reader]
    for index, path in enumerate(paths):
        yield CaseInput(
            file=f"case_{index:03d}.nii.gz",
            shape=probability_shape(path)[2:],
            load_probabilities=lambda path=path: load(path),
            # files read by path (nnactive query) may load side by side; pool prediction's stream not
            concurrent_loads=reader == "mapped",
        )


def run_engine(name: str, paths: list[Path], settings: dict, reader: str = "mapped"):
    from nnactive_core.plugins import registry
    from nnactive_core.query.engine import run_score_query

    strategy = registry().get("strategy", name)
    return run_score_query(strategy, engine_inputs(paths, reader), context(settings), owner=name)


def run_floor(paths: list[Path]) -> float:
    total = 0.0
    for path in paths:
        probabilities = np.load(path)
        mean = probabilities.mean(axis=0, dtype=np.float32)
        total += float(-(mean * np.log(np.maximum(mean, 1e-12))).sum())
    return total


def timed(function) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def worker_inprocess(args, settings: dict) -> dict:
    paths = sorted(Path(args.pool).glob("*.npy"))
    warm = paths[:1]
    run_floor(warm)
    for name in settings["strategies"]:
        run_engine(name, warm, {**settings, "query_size": 1})
    jobs = {"floor": lambda: run_floor(paths)}
    jobs.update(
        {name: lambda name=name: run_engine(name, paths, settings) for name in settings["strategies"]}
    )
    samples: dict[str, list[dict]] = {key: [] for key in jobs}
    for repeat in range(settings["repeats"]):
        order = list(jobs) if repeat % 2 == 0 else list(jobs)[::-1]
        for key in order:
            samples[key].append(timed(jobs[key]))
    result = {
        key: {kind: statistics.median(s[kind] for s in runs) / len(paths) for kind in ("wall", "cpu")}
        for key, runs in samples.items()
    }
    if settings["device"] != "cpu":
        result["host_to_device_copies_per_case"] = copies_per_case(paths, settings)
    return result


def copies_per_case(paths: list[Path], settings: dict) -> float:
    """Host-to-device copies of one ``pred_entropy`` query over the pool, per case (CUDA profiler)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as trace:
        run_engine("pred_entropy", paths, settings)
        torch.cuda.synchronize()
    copies = [event for event in trace.events() if "HtoD" in event.name]
    return len(copies) / len(paths)


def established_query(paths: list[Path], settings: dict) -> list[list]:
    """The established per-image path (see the module docstring); returns the picks."""
    import torch
    from scipy.signal import convolve

    patch, per_case = settings["patch"], settings["patches_per_case"]
    accepted_all = []
    for index, path in enumerate(paths):
        probabilities = torch.from_numpy(np.load(path))
        with torch.no_grad():
            mean = probabilities.float().clamp(0, 1).mean(dim=0)
            scores = (-torch.special.xlogy(mean, mean).sum(dim=0)).numpy()
        kernel = [min(patch, s) for s in scores.shape]
        weights = np.full(kernel, 1.0 / np.prod(kernel), dtype=np.float32)
        aggregated = convolve(scores, weights, mode="valid")
        records = [
            {"coords": [int(c) for c in coords], "size": kernel, "score": float(aggregated[coords])}
            for coords in np.ndindex(aggregated.shape)
        ]
        records.sort(key=lambda record: record["score"], reverse=True)
        accepted = []
        for record in records:
            if all(
                any(
                    a >= b + k or a + k <= b
                    for a, b, k in zip(record["coords"], other["coords"], kernel, strict=True)
                )
                for other in accepted
            ):
                accepted.append(record)
                if len(accepted) == per_case:
                    break
        accepted_all += [{**record, "file": f"case_{index:03d}.nii.gz"} for record in accepted]
    accepted_all.sort(key=lambda record: record["score"], reverse=True)
    return [[record["file"], *record["coords"]] for record in accepted_all[: settings["query_size"]]]


def worker_established(args, settings: dict) -> dict:
    picks = established_query(sorted(Path(args.pool).glob("*.npy")), settings)
    return {"picks": picks}


def peak_rss_mb() -> float:
    """This process's peak resident set (``VmHWM``). Not ``getrusage``'s ``ru_maxrss``, which a child
    inherits from its parent across fork and exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_rss(args, settings: dict) -> dict:
    paths = sorted(Path(args.pool).glob("*.npy"))
    cycled = [paths[i % len(paths)] for i in range(args.worker_cases)]
    run_engine(args.strategy, cycled, settings, reader=args.reader)
    return {"peak_rss_mb": peak_rss_mb()}


WORKERS = {"inprocess": worker_inprocess, "established": worker_established, "rss": worker_rss}


# --- the parent: runs the workers and reports ---------------------------------------------------------


def run_worker(mode: str, pool: Path, settings: dict, env: dict | None = None, **options) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", mode, "--pool", str(pool)]
    command += ["--settings", json.dumps(settings)]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    run = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if run.returncode != 0:
        raise SystemExit(f"{mode} worker failed:\n{run.stderr}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def nnactive_query(pool: Path, out: Path, settings: dict) -> list[str]:
    """The shipped command line, as a user runs it (the console script's entry point)."""
    return [
        sys.executable,
        "-c",
        "import sys; from nnactive_core.cli.main import cli; sys.exit(cli())",
        "query",
        "--strategy",
        "pred_entropy",
        "--probs",
        str(pool),
        "--patch-size",
        *[str(settings["patch"])] * 3,
        "--query-size",
        str(settings["query_size"]),
        "--patches-per-case",
        str(settings["patches_per_case"]),
        "--device",
        settings["device"],
        "--out",
        str(out),
    ]


def compare_processes(pool: Path, scratch: Path, settings: dict) -> dict:
    established = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "established",
        "--pool",
        str(pool),
    ]
    established += ["--settings", json.dumps(settings)]
    commands = {
        "nnactive_query": nnactive_query(pool, scratch / "query.json", settings),
        "established": established,
    }
    walls: dict[str, list[float]] = {key: [] for key in commands}
    outputs = {}
    for repeat in range(settings["repeats"]):
        for key in commands if repeat % 2 == 0 else list(commands)[::-1]:
            start = time.perf_counter()
            run = subprocess.run(commands[key], capture_output=True, text=True)
            walls[key].append(time.perf_counter() - start)
            if run.returncode != 0:
                raise SystemExit(f"{key} failed:\n{run.stderr}")
            outputs[key] = run.stdout
    ours = json.loads((scratch / "query.json").read_text())["patches"]
    ours = [[p["file"], *p["coords"]] for p in ours]
    theirs = json.loads(outputs["established"].strip().splitlines()[-1])["picks"]
    median = {key: statistics.median(values) for key, values in walls.items()}
    return {
        "seconds": median,
        "established_over_nnactive_query": median["established"] / median["nnactive_query"],
        "identical_picks": ours == theirs,
        "picks_in_both": len({tuple(p) for p in ours} & {tuple(p) for p in theirs}) / max(1, len(theirs)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=16)
    parser.add_argument("--size", type=int, default=96, help="Edge of the cubic cases.")
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    parser.add_argument("--patch", type=int, default=32, help="Edge of the cubic patches.")
    parser.add_argument("--stride", type=int, default=1)
    parser.add_argument("--query-size", type=int, default=5)
    parser.add_argument("--patches-per-case", type=int, default=5)
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rss-cases", type=int, nargs=2, default=(10, 40))
    parser.add_argument("--bound-mb", type=int, default=64, help="Memory bound of the spilled-stack check.")
    parser.add_argument("--device", default="cpu", help="Device the strategies score on (the floor: CPU).")
    parser.add_argument(
        "--parts", nargs="+", choices=PARTS, default=list(PARTS), help="Measurements to run [all]."
    )
    parser.add_argument("--quick", action="store_true", help="Small sizes: a smoke run.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--pool", help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    parser.add_argument("--worker-cases", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--strategy", help=argparse.SUPPRESS)
    parser.add_argument("--reader", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args, json.loads(args.settings))))
        return
    if args.quick:
        args.cases, args.size, args.patch, args.repeats, args.rss_cases = 3, 40, 12, 1, (2, 6)
    settings = {
        key: getattr(args, key)
        for key in (
            "size",
            "classes",
            "members",
            "dtype",
            "patch",
            "stride",
            "query_size",
            "patches_per_case",
        )
    }
    settings.update(strategies=args.strategies, repeats=args.repeats, cases=args.cases, device=args.device)
    scratch = Path(tempfile.mkdtemp(prefix="bench_query_"))
    try:
        report = measure_all(args, settings, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print_report(report)
    if args.json:
        from nnactive_core.io import atomic_write_json

        atomic_write_json(args.json, report)


def measure_all(args, settings: dict, scratch: Path) -> dict:
    from nnactive_core.threads import thread_budget

    pool = scratch / "pool"
    write_pool(pool, args.cases, args.size, args.classes, args.members, args.dtype)
    report = {"settings": settings, "threads": thread_budget(), "load_average": os.getloadavg()}
    if "inprocess" in args.parts:
        inprocess = run_worker("inprocess", pool, settings)
        one_thread = run_worker("inprocess", pool, settings, env={"OMP_NUM_THREADS": "1"})
        report["per_case_seconds"] = inprocess
        report["per_case_seconds_one_thread"] = one_thread
        for key, times in (("engine_over_floor", inprocess), ("engine_over_floor_one_thread", one_thread)):
            report[key] = {
                name: times[name]["wall"] / times["floor"]["wall"] for name in settings["strategies"]
            }
    if "process" in args.parts:
        report["process"] = compare_processes(pool, scratch, settings)
    if "rss" in args.parts:
        rss = {}
        for strategy in ("pred_entropy", "class_power_pe66_exp"):
            for reader in ("mapped", "ram"):
                for cases in args.rss_cases:
                    result = run_worker(
                        "rss", pool, settings, worker_cases=cases, strategy=strategy, reader=reader
                    )
                    rss[f"{strategy} {reader} {cases}"] = result["peak_rss_mb"]
        report["rss_mb"] = rss
    if "spilled" in args.parts:
        report["spilled"] = measure_spilled(args, settings, scratch)
    return report


def measure_spilled(args, settings: dict, scratch: Path) -> dict:
    """Stacks above the bound, memory-mapped as prediction spills them: peak RSS for two pool sizes
    and two member counts (a 4x larger stack)."""
    low, high = args.rss_cases
    results = {}
    size = args.size
    while args.classes * args.members * size**3 * np.dtype(args.dtype).itemsize <= args.bound_mb * 2**20:
        size += 16
    for members in (args.members, 4 * args.members):
        folder = scratch / f"spilled_{members}"
        write_pool(folder, 2, size, args.classes, members, args.dtype)
        local = {**settings, "members": members, "size": size}
        stack_mb = args.classes * members * size**3 * np.dtype(args.dtype).itemsize / 2**20
        for cases in (low, high):
            result = run_worker(
                "rss", folder, local, worker_cases=cases, strategy="pred_entropy", reader="spilled"
            )
            results[f"{members} members, {size}^3 ({stack_mb:.0f} MB stacks), {cases} cases"] = result[
                "peak_rss_mb"
            ]
        shutil.rmtree(folder)
    return {"bound_mb": args.bound_mb, "peak_rss_mb": results}


def print_report(report: dict) -> None:
    s = report["settings"]
    print(
        f"{s['cases']} cases of {s['members']} x {s['classes']} x {s['size']}^3 {s['dtype']}; "
        f"patch {s['patch']}^3, stride {s['stride']}, {s['patches_per_case']} per case, "
        f"query {s['query_size']}; device {s['device']}; "
        f"thread budget {report['threads']}; load average {report['load_average'][0]:.1f}"
    )
    if "per_case_seconds" in report:
        print(
            f"{'run':24} {'wall ms/case':>12} {'cpu ms/case':>12} {'/floor':>7} {'1 thread':>9} {'/floor':>7}"
        )
        times, one = report["per_case_seconds"], report["per_case_seconds_one_thread"]
        for key in ("floor", *s["strategies"]):
            ratio = times[key]["wall"] / times["floor"]["wall"]
            ratio_one = one[key]["wall"] / one["floor"]["wall"]
            print(
                f"{key:24} {1e3 * times[key]['wall']:12.1f} {1e3 * times[key]['cpu']:12.1f} {ratio:7.2f} "
                f"{1e3 * one[key]['wall']:9.1f} {ratio_one:7.2f}"
            )
        if "host_to_device_copies_per_case" in times:
            print(f"host-to-device copies per case: {times['host_to_device_copies_per_case']:.2f}")
    if "process" in report:
        process = report["process"]
        print(
            f"whole process: nnactive query {process['seconds']['nnactive_query']:.2f} s, established "
            f"{process['seconds']['established']:.2f} s = {process['established_over_nnactive_query']:.1f}x; "
            f"identical picks: {process['identical_picks']} ({100 * process['picks_in_both']:.0f}% shared)"
        )
    if "rss_mb" in report:
        print("peak RSS MB (default allocator):")
        for key, value in report["rss_mb"].items():
            print(f"  {key:40} {value:7.0f}")
    if "spilled" in report:
        print(f"spilled stacks, memory bound {report['spilled']['bound_mb']} MB, peak RSS MB:")
        for key, value in report["spilled"]["peak_rss_mb"].items():
            print(f"  {key:52} {value:7.0f}")


if __name__ == "__main__":
    main()
