"""Preprocess chosen cases of a planned dataset (only annotated cases train; only changed labels need it).

nnU-Net's own preprocessor always wipes its output folder and processes every case. Here each named case
is run through the configured preprocessor (``DefaultPreprocessor``) and written beside the others:
first into a temporary folder, then moved into place, so a killed run leaves either the old or the new
files. The case's label is also copied to ``gt_segmentations/`` as ``nnUNetv2_preprocess`` does.
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from nnactive_core.io import atomic_write_with, read_json
from nnactive_core.nnunet.environment import NnunetFolders, default_processes
from nnactive_core.nnunet.plans import CONFIGURATION, load_plans

_CASE_SUFFIXES = (".b2nd", "_seg.b2nd", ".pkl", ".npz", ".npy", "_seg.npy")
_CASES_PER_WORKER_FOR_POOL = 4


def case_files(raw_dataset: Path, dataset_json: dict, case: str) -> tuple[list[Path], Path]:
    """The image files (one per channel, in channel order) and the label file of a training case."""
    ending = dataset_json["file_ending"]
    pattern = re.compile(re.escape(case) + r"_\d{4}" + re.escape(ending))
    images = sorted(
        p for p in (raw_dataset / "imagesTr").glob(f"{case}_*{ending}") if pattern.fullmatch(p.name)
    )
    n_channels = len(dataset_json.get("channel_names", dataset_json.get("modality", {})))
    if len(images) != n_channels:
        raise FileNotFoundError(
            f"case {case!r}: expected {n_channels} image file(s) {case}_XXXX{ending} in "
            f"{raw_dataset / 'imagesTr'}, found {len(images)}"
        )
    label = raw_dataset / "labelsTr" / f"{case}{ending}"
    if not label.is_file():
        raise FileNotFoundError(f"case {case!r}: label file {label} not found")
    return images, label


def preprocessed_cases(folders: NnunetFolders, dataset: str, configuration: str = CONFIGURATION) -> set[str]:
    """Case ids that currently have preprocessed data."""
    plans = load_plans(folders, dataset)
    folder = folders.preprocessed_dataset(dataset) / plans["configurations"][configuration]["data_identifier"]
    if not folder.is_dir():
        return set()
    return {p.name[: -len(".pkl")] for p in folder.glob("*.pkl")}


def preprocess_cases(
    folders: NnunetFolders,
    dataset: str,
    cases: Iterable[str],
    *,
    num_processes: int | None = None,
    configuration: str = CONFIGURATION,
) -> list[str]:
    """(Re-)preprocess ``cases`` of ``dataset`` with its plans; returns the processed case ids.

    Runs in this process for one worker or few cases (a spawn worker re-imports torch and nnU-Net, which
    costs seconds), otherwise in a spawn pool of ``num_processes`` (default: CPUs, at most 8)."""
    cases = sorted(set(cases))
    if not cases:
        return []
    plans = load_plans(folders, dataset)
    if configuration not in plans["configurations"]:
        raise KeyError(f"configuration {configuration!r} is not planned for {dataset}")
    raw = folders.raw_dataset(dataset)
    dataset_json = read_json(raw / "dataset.json", expect=dict)
    files = {case: case_files(raw, dataset_json, case) for case in cases}
    output = (
        folders.preprocessed_dataset(dataset)
        / PlansManager(plans).get_configuration(configuration).data_identifier
    )
    output.mkdir(parents=True, exist_ok=True)
    gt_folder = folders.preprocessed_dataset(dataset) / "gt_segmentations"
    jobs = [
        (case, [str(p) for p in images], str(label), str(output), plans, configuration, dataset_json)
        for case, (images, label) in files.items()
    ]
    workers = num_processes or default_processes(len(cases))
    if workers <= 1 or len(cases) < _CASES_PER_WORKER_FOR_POOL * workers:
        for job in jobs:
            _preprocess_case(*job)
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            list(pool.map(_preprocess_case, *zip(*jobs, strict=True)))
    for _, label in files.values():
        target = gt_folder / label.name
        atomic_write_with(target, lambda tmp, source=label: shutil.copyfile(source, tmp))
    return cases


def _preprocess_case(
    case: str,
    images: Sequence[str],
    label: str,
    output: str,
    plans: dict,
    configuration: str,
    dataset_json: dict,
) -> None:
    """One case: preprocess into a temporary folder, then replace the case's old files."""
    plans_manager = PlansManager(plans)
    config = plans_manager.get_configuration(configuration)
    preprocessor = config.preprocessor_class(verbose=False)
    output_dir = Path(output)
    staging = Path(tempfile.mkdtemp(prefix=f".{case}.", dir=output_dir))
    try:
        preprocessor.run_case_save(
            str(staging / case), list(images), label, plans_manager, config, dataset_json
        )
        produced = {p.name: p for p in staging.iterdir()}
        for suffix in _CASE_SUFFIXES:
            if f"{case}{suffix}" not in produced:
                (output_dir / f"{case}{suffix}").unlink(missing_ok=True)
        # the properties file goes last: its presence marks a complete case
        for name in sorted(produced, key=lambda name: name.endswith(".pkl")):
            produced[name].replace(output_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
