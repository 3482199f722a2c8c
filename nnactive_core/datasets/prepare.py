"""Preparation of a base dataset, done once: the held-out validation split and smaller derivatives.

Both steps validate first and write nothing when the dataset has problems, and both are idempotent:
run again, they report what is there. The split moves files through a staging folder inside the
dataset, so a killed split resumes where it stopped and never leaves a case half-moved unnoticed."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np

from nnactive_core.datasets.nnunet_raw import NnunetRawDataset
from nnactive_core.datasets.raw_format import (
    DATASET_JSON,
    SPLITS,
    DatasetError,
    list_channel_files,
    load_dataset_json,
)
from nnactive_core.datasets.validate import check_dataset
from nnactive_core.io import JsonFileError, atomic_write_json, read_json

SPLIT_SEED = 12345
SPLIT_STAGING = ".nnactive_split"
DERIVED_FROM = "nnactive_derived_from"
FOLDER_PREFIX = "Dataset"


@attrs.frozen(kw_only=True)
class SplitResult:
    pool: tuple[str, ...]
    validation: tuple[str, ...]
    moved: bool
    """False when the dataset had been split before (nothing changed)."""


def parse_test_size(text: str | float | int) -> float | int:
    """``"0.25"`` is a fraction of the cases (or groups), ``"5"`` a count."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value: float | int = text
    else:
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"test size must be a fraction in (0, 1) or a count, got {text!r}") from None
    if isinstance(value, float) and not 0.0 < value < 1.0:
        raise ValueError(f"a fractional test size must lie strictly between 0 and 1, got {value}")
    if isinstance(value, int) and value < 1:
        raise ValueError(f"a test size count must be at least 1, got {value}")
    return value


def group_of(case: str, separator: str | None) -> str:
    """The patient a case belongs to: its name up to the last ``separator`` (the case itself without
    one, or when the name has no separator)."""
    if not separator or separator not in case:
        return case
    return case.rsplit(separator, 1)[0]


def choose_validation(
    cases: list[str], test_size: float | int, separator: str | None = None, seed: int = SPLIT_SEED
) -> list[str]:
    """The validation cases: a seeded shuffle of the groups, the first ``test_size`` of them, every
    case of a chosen group."""
    groups = sorted({group_of(case, separator) for case in cases})
    count = math.floor(test_size * len(groups)) if isinstance(test_size, float) else test_size
    if count < 1 or count >= len(groups):
        unit = "patient groups" if separator else "cases"
        raise ValueError(
            f"test size {test_size} selects {count} of {len(groups)} {unit}; the validation set "
            "and the pool must both keep at least one"
        )
    order = np.random.default_rng(seed).permutation(len(groups))
    chosen = {groups[i] for i in order[:count]}
    return sorted(case for case in cases if group_of(case, separator) in chosen)


def _image_cases(folder: Path, file_ending: str) -> dict[str, dict[int, Path]]:
    return list_channel_files(folder, file_ending)[0]


def split_validation(
    root: Path,
    test_size: float | int = 0.25,
    separator: str | None = None,
    seed: int = SPLIT_SEED,
    progress: Callable[[int, int], None] | None = None,
) -> SplitResult:
    """Move a seeded share of ``imagesTr``/``labelsTr`` into ``imagesVal``/``labelsVal`` and update
    ``numTraining``/``numVal``. Grouping by ``separator`` keeps every patient on one side.

    Files move into ``.nnactive_split/{images,labels}`` first; only when all are there is
    ``dataset.json`` rewritten and each staging folder renamed to its final name. A rerun after a kill
    picks up the staged cases and finishes the same split."""
    root = Path(root)
    staging = root / SPLIT_STAGING
    images_tr, labels_tr = (root / folder for folder in SPLITS["pool"])
    final = dict(zip(("images", "labels"), (root / folder for folder in SPLITS["validation"]), strict=True))
    if not staging.exists():
        if any(folder.exists() for folder in final.values()):
            check_dataset(root, level="structure")
            dataset = NnunetRawDataset(root)
            return SplitResult(
                pool=tuple(dataset.pool_cases()), validation=tuple(dataset.validation_cases()), moved=False
            )
        check_dataset(root, level="full")
    dataset_json = load_dataset_json(root)
    file_ending = dataset_json["file_ending"]
    pool_files = _image_cases(images_tr, file_ending)
    staged = {*_image_cases(staging / "images", file_ending), *_image_cases(final["images"], file_ending)}
    everything = sorted({*staged, *pool_files})
    validation = choose_validation(everything, test_size, separator, seed)
    if staged - set(validation):
        raise DatasetError(
            f"{staging}: holds cases of an interrupted split with other settings "
            f"({', '.join(sorted(staged - set(validation)))}); move them back into "
            "imagesTr/labelsTr and remove the folder"
        )
    for kind, folder in final.items():
        if not folder.exists():
            (staging / kind).mkdir(parents=True, exist_ok=True)
    for done, case in enumerate(validation, start=1):
        files = [(path, "images") for path in pool_files.get(case, {}).values()]
        files.append((labels_tr / f"{case}{file_ending}", "labels"))
        for path, kind in files:
            if path.exists():
                os.replace(path, staging / kind / path.name)
        if progress is not None:
            progress(done, len(validation))
    pool = sorted(set(everything) - set(validation))
    atomic_write_json(
        root / DATASET_JSON, {**dataset_json, "numTraining": len(pool), "numVal": len(validation)}
    )
    for kind, folder in final.items():
        if (staging / kind).exists():
            os.replace(staging / kind, folder)
    staging.rmdir()
    return SplitResult(pool=tuple(pool), validation=tuple(validation), moved=True)


def dataset_folder_name(dataset_id: int, name: str) -> str:
    return f"{FOLDER_PREFIX}{dataset_id:03d}_{name}"


def base_name(folder_name: str) -> str:
    """``Dataset004_Hippocampus`` -> ``Hippocampus``."""
    if folder_name.startswith(FOLDER_PREFIX) and "_" in folder_name:
        return folder_name.split("_", 1)[1]
    return folder_name


def _sample(cases: list[str], fraction: float, rng: np.random.Generator) -> list[str]:
    if not cases:
        return []
    count = max(1, round(fraction * len(cases)))
    return sorted(cases[i] for i in rng.permutation(len(cases))[:count])


def derive_dataset(
    root: Path,
    target_id: int,
    fraction: float = 0.2,
    seed: int = SPLIT_SEED,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, bool]:
    """Copy a seeded ``fraction`` of the pool and validation cases into ``DatasetNNN_<name>_small``
    beside ``root``. Returns the folder and whether it was made now (False: it existed with the same
    settings)."""
    root = Path(root)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    target = root.parent / dataset_folder_name(target_id, f"{base_name(root.name)}_small")
    record = {"dataset": root.name, "fraction": fraction, "seed": seed}
    if target.exists():
        try:
            recorded = read_json(target / DATASET_JSON, expect=dict).get(DERIVED_FROM)
        except JsonFileError:
            recorded = None
        if recorded == record:
            return target, False
        raise DatasetError(
            f"{target}: exists and was not derived from {root.name} with fraction {fraction} and seed {seed}"
        )
    taken = sorted(p.name for p in root.parent.glob(f"{FOLDER_PREFIX}{target_id:03d}_*"))
    if taken:
        raise DatasetError(f"dataset id {target_id} is taken by {root.parent / taken[0]}")
    check_dataset(root, level="full")
    dataset = NnunetRawDataset(root)
    rng = np.random.default_rng(seed)
    chosen = {
        "pool": _sample(dataset.pool_cases(), fraction, rng),
        "validation": _sample(dataset.validation_cases(), fraction, rng),
    }
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root.parent))
    try:
        total, done = sum(len(c) for c in chosen.values()), 0
        for split, cases in chosen.items():
            for case in cases:
                files = [*dataset.image_files(case, split), dataset.label_file(case, split)]
                if split == "pool" and dataset.free_label_file(case).exists():
                    files.append(dataset.free_label_file(case))
                for path in files:
                    (staging / path.parent.name).mkdir(exist_ok=True)
                    shutil.copy2(path, staging / path.parent.name / path.name)
                done += 1
                if progress is not None:
                    progress(done, total)
        dataset_json = dict(dataset.dataset_json)
        dataset_json.update(
            name=f"{dataset_json.get('name', base_name(root.name))}_small",
            numTraining=len(chosen["pool"]),
            **{DERIVED_FROM: record},
        )
        if dataset.validation_cases() or "numVal" in dataset_json:
            dataset_json["numVal"] = len(chosen["validation"])
        for folder in SPLITS["pool"]:
            (staging / folder).mkdir(exist_ok=True)
        atomic_write_json(staging / DATASET_JSON, dataset_json)
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, True
