"""Pool prediction with the fold ensemble: speed against plain nnU-Net, and memory against pool size.

1. Speed: ``EnsemblePredictor`` (each case preprocessed once, every fold's probabilities kept apart)
   against the baseline of M single-model nnU-Net predictions of the same cases
   (``nnUNetPredictor.predict_from_files_sequential`` with one fold each, probabilities returned).
   Reported as ensemble time / sum of single-model times; goal <= 1.1.
2. Memory: peak RSS of a subprocess that streams a pool of 10 and one of 40 cases through
   ``EnsemblePredictor.predict_cases``; goal: flat (ratio ~1).

Everything runs on one machine in one run: a tiny synthetic dataset is planned and M folds are trained
for a few iterations with the real pipeline (the weights' quality does not matter for timing), then
both measurements run on the same models. Default sizes finish in a few minutes on two CPU cores::

    python benchmarks/bench_prediction.py [--members 2] [--cases 4] [--size 40] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BASE = "Dataset900_Bench"
EXPERIMENT = "Dataset001_Bench__bench"
IGNORE = 3


def _write(array: np.ndarray, path: Path) -> None:
    import SimpleITK as sitk

    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))


def make_dataset(root: Path, n_cases: int, size: int, seed: int = 0) -> None:
    """Base and experiment raw datasets: noise with a bright sphere (1) and a brighter cube (2); the
    experiment's labels are ignore except one annotated cube per case."""
    rng = np.random.default_rng(seed)
    from nnactive_core.nnunet.environment import NnunetFolders

    base = NnunetFolders.under(root / "raw").raw_dataset(BASE)
    experiment = NnunetFolders.under(root / "data" / BASE).raw_dataset(EXPERIMENT)
    grid = np.indices((size,) * 3).transpose(1, 2, 3, 0)
    for i in range(n_cases):
        labels = np.zeros((size,) * 3, dtype=np.uint8)
        labels[np.linalg.norm(grid - rng.uniform(0.3, 0.5, 3) * size, axis=-1) < size / 6] = 1
        corner = rng.integers(size // 2, size - size // 5, 3)
        labels[tuple(slice(c, c + size // 6) for c in corner)] = 2
        image = rng.normal(0, 20, labels.shape) + 100 * (labels == 1) + 200 * (labels == 2)
        case = f"case_{i:03d}"
        _write(image.astype(np.float32), base / "imagesTr" / f"{case}_0000.nii.gz")
        _write(labels, base / "labelsTr" / f"{case}.nii.gz")
        partial = np.full(labels.shape, IGNORE, dtype=np.uint8)
        partial[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = labels[
            size // 4 : 3 * size // 4, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4
        ]
        _write(partial, experiment / "labelsTr" / f"{case}.nii.gz")
    dataset_json = {
        "channel_names": {"0": "MRI"},
        "labels": {"background": 0, "a": 1, "b": 2},
        "numTraining": n_cases,
        "file_ending": ".nii.gz",
    }
    (base / "dataset.json").write_text(json.dumps(dataset_json))
    (experiment / "dataset.json").write_text(
        json.dumps({**dataset_json, "labels": {**dataset_json["labels"], "ignore": IGNORE}})
    )
    (experiment / "imagesTr").symlink_to(base / "imagesTr", target_is_directory=True)


def train_models(root: Path, members: int, n_train: int) -> Path:
    from nnactive_core.nnunet.environment import NnunetFolders
    from nnactive_core.nnunet.planning import plan_dataset, prepare_experiment_plans
    from nnactive_core.nnunet.preprocessing import preprocess_cases
    from nnactive_core.nnunet.profiles import get_profile
    from nnactive_core.nnunet.splits import make_splits, write_splits
    from nnactive_core.nnunet.training import model_folder, train_fold

    base, group = NnunetFolders.under(root / "raw"), NnunetFolders.under(root / "data" / BASE)
    profile = get_profile("tiny", epochs=1, iterations_per_epoch=2, val_iterations_per_epoch=0)
    plan_dataset(base, BASE, num_processes=1)
    prepare_experiment_plans(base, BASE, group, EXPERIMENT, profile)
    cases = [f"case_{i:03d}" for i in range(n_train)]
    preprocess_cases(group, EXPERIMENT, cases, num_processes=1)
    write_splits(
        group.preprocessed_dataset(EXPERIMENT) / "splits_final.json",
        make_splits({c: {0, 1, 2} for c in cases}, n_folds=members, seed=0),
    )
    for fold in range(members):
        train_fold(group, EXPERIMENT, fold, profile, device="cpu")
    return model_folder(group, EXPERIMENT)


def pool(root: Path, n_cases: int) -> list[tuple[str, list[Path]]]:
    from nnactive_core.nnunet.environment import NnunetFolders

    images = NnunetFolders.under(root / "raw").raw_dataset(BASE) / "imagesTr"
    return [(f"case_{i:03d}", [images / f"case_{i:03d}_0000.nii.gz"]) for i in range(n_cases)]


def time_per_case(model_dir: Path, members: int, cases, repeats: int) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds of the ensemble and of M plain nnU-Net single-model predictions (one fold
    each, probabilities returned, nothing written), summed over the cases. Both sides run case by case,
    alternating which goes first, so load from other processes hits both alike; CPU time (this
    process, all threads) is less sensitive to that load than wall time."""
    from contextlib import redirect_stdout
    from io import StringIO

    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    from nnactive_core.nnunet.fold_models import load_fold_models
    from nnactive_core.nnunet.prediction import EnsemblePredictor

    ensemble = EnsemblePredictor(model_dir, range(members), device="cpu", dtype="float32")
    models = load_fold_models(model_dir, range(members), device=torch.device("cpu"))
    singles = []
    with redirect_stdout(StringIO()):
        for parameters in models.parameters:
            single = nnUNetPredictor(use_mirroring=False, device=torch.device("cpu"), allow_tqdm=False)
            single.manual_initialization(
                models.network,
                models.plans_manager,
                models.configuration_manager,
                [parameters],
                models.dataset_json,
                models.trainer_name,
                None,
            )
            singles.append(single)

    def run_ensemble(case) -> None:
        for prediction in ensemble.predict_cases([case]):
            float(prediction.probabilities[:, 1].mean())

    def run_singles(case) -> None:
        with redirect_stdout(StringIO()):
            for single in singles:
                ((_, probabilities),) = single.predict_from_files_sequential(
                    [[str(p) for p in case[1]]], None, True
                )
                float(probabilities[1].mean())

    run_ensemble(cases[0])  # warm-up: first-call costs (caches, allocator) on both sides
    run_singles(cases[0])
    totals = {name: {"wall": 0.0, "cpu": 0.0} for name in ("ensemble", "singles")}
    for repeat in range(repeats):
        for index, case in enumerate(cases):
            order = [("ensemble", run_ensemble), ("singles", run_singles)]
            for name, run in order if (index + repeat) % 2 == 0 else order[::-1]:
                wall, cpu = time.perf_counter(), time.process_time()
                run(case)
                totals[name]["wall"] += time.perf_counter() - wall
                totals[name]["cpu"] += time.process_time() - cpu
    return totals


def rss_child(root: Path, model_dir: Path, members: int, n_cases: int) -> None:
    """Stream ``n_cases`` through the ensemble; print the peak RSS in MiB."""
    from nnactive_core.nnunet.prediction import EnsemblePredictor

    predictor = EnsemblePredictor(model_dir, range(members), device="cpu")
    for prediction in predictor.predict_cases(pool(root, n_cases)):
        float(prediction.probabilities[:, 1].astype(np.float32).mean())
    print(
        json.dumps(
            {"cases": n_cases, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        )
    )


def measure_rss(root: Path, model_dir: Path, members: int, n_cases: int) -> float:
    command = [sys.executable, __file__, "--rss-child", str(root), str(model_dir), str(members), str(n_cases)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])["peak_rss_mib"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2)
    parser.add_argument("--cases", type=int, default=4, help="cases timed for the speed comparison")
    parser.add_argument("--size", type=int, default=40, help="edge length of the cubic cases")
    parser.add_argument("--repeats", type=int, default=2, help="passes over the timed cases")
    parser.add_argument("--pools", type=int, nargs=2, default=(10, 40), help="the two pool sizes for RSS")
    parser.add_argument("--rss-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        root, model_dir, members, n_cases = args.rss_child
        rss_child(Path(root), Path(model_dir), int(members), int(n_cases))
        return

    root = Path(tempfile.mkdtemp(prefix="bench_prediction_"))
    try:
        make_dataset(root, max(args.pools), args.size)
        start = time.perf_counter()
        model_dir = train_models(root, args.members, n_train=max(2 * args.members, 4))
        print(
            f"setup (plan, preprocess, {args.members} folds): {time.perf_counter() - start:.1f} s", flush=True
        )
        times = time_per_case(model_dir, args.members, pool(root, args.cases), args.repeats)
        ensemble, single = times["ensemble"], times["singles"]
        rss = {n: measure_rss(root, model_dir, args.members, n) for n in args.pools}
        small, large = args.pools
        result = {
            "members": args.members,
            "cases": args.cases,
            "size": args.size,
            "repeats": args.repeats,
            "ensemble_wall_s": ensemble["wall"],
            "single_models_wall_s": single["wall"],
            "time_ratio_wall": ensemble["wall"] / single["wall"],
            "ensemble_cpu_s": ensemble["cpu"],
            "single_models_cpu_s": single["cpu"],
            "time_ratio_cpu": ensemble["cpu"] / single["cpu"],
            f"peak_rss_mib_{small}": rss[small],
            f"peak_rss_mib_{large}": rss[large],
            "rss_ratio": rss[large] / rss[small],
        }
        for kind in ("wall", "cpu"):
            print(
                f"{kind}: ensemble {ensemble[kind]:.2f} s / {args.members} single models "
                f"{single[kind]:.2f} s = {result['time_ratio_' + kind]:.3f} (goal <= 1.1)"
            )
        print(
            f"peak RSS {small} cases {rss[small]:.0f} MiB, {large} cases {rss[large]:.0f} MiB "
            f"= {result['rss_ratio']:.3f} (goal ~1)"
        )
        print(json.dumps(result))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
