"""Import a Medical Segmentation Decathlon task through nnU-Net's own converter
(``nnunetv2.dataset_conversion.convert_MSD_dataset``), so the result is exactly what
``nnUNetv2_convert_MSD_dataset`` makes.

The converter writes into ``$nnUNet_raw``; here it writes into a hidden staging folder beside the
target, and the finished dataset is renamed into place, so a failed or killed import leaves nothing
behind that looks like a dataset."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
from pathlib import Path

from nnactive_core.datasets.raw_format import DATASET_JSON, DatasetError

TASK_PATTERN = re.compile(r"^Task(\d+)_([^_]+)$")
REQUIRED = ("imagesTr", "labelsTr", "imagesTs", "dataset.json")


def msd_target_name(task_dir: Path, dataset_id: int | None = None) -> str:
    """``Task04_Hippocampus`` -> ``Dataset004_Hippocampus`` (or the given id)."""
    match = TASK_PATTERN.match(Path(task_dir).name)
    if match is None:
        raise DatasetError(f"{task_dir}: not an MSD task folder name (TaskNN_Name, e.g. Task04_Hippocampus)")
    task_id = int(match[1]) if dataset_id is None else dataset_id
    return f"Dataset{task_id:03d}_{match[2]}"


def import_msd(
    task_dir: Path, raw_root: Path, dataset_id: int | None = None, num_processes: int = 1
) -> tuple[Path, bool]:
    """Convert the MSD task at ``task_dir`` into ``raw_root/DatasetNNN_Name``. Returns the folder and
    whether it was made now (False: it existed already)."""
    task_dir, raw_root = Path(task_dir), Path(raw_root)
    name = msd_target_name(task_dir, dataset_id)
    target = raw_root / name
    if (target / DATASET_JSON).is_file():
        return target, False
    missing = [part for part in REQUIRED if not (task_dir / part).exists()]
    if missing:
        raise DatasetError(f"{task_dir}: not an MSD task, missing {', '.join(missing)}")
    taken = sorted(p.name for p in raw_root.glob(name.split("_", 1)[0] + "_*") if p.name != name)
    if taken:
        raise DatasetError(
            f"{raw_root / taken[0]}: dataset id {name[7:10]} is taken; choose another with --id"
        )
    if target.exists():
        raise DatasetError(f"{target}: exists without {DATASET_JSON}; remove it and import again")

    from nnactive_core.nnunet.environment import NnunetFolders, configure_process_defaults, nnunet_paths

    configure_process_defaults()
    from nnunetv2.dataset_conversion.convert_MSD_dataset import convert_msd_dataset

    raw_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=raw_root))
    # The converter checks the id against nnUNet_preprocessed and nnUNet_results too: point them at
    # the empty staging folder so only raw_root (checked above) decides.
    folders = NnunetFolders(raw=staging, preprocessed=staging / "none", results=staging / "none")
    task_id = int(name[7:10])
    try:
        with nnunet_paths(folders), contextlib.redirect_stdout(io.StringIO()):
            convert_msd_dataset(
                str(task_dir), overwrite_target_id=task_id, num_processes=max(1, num_processes)
            )
        os.rename(staging / name, target)
    except (AssertionError, RuntimeError) as error:
        raise DatasetError(f"{task_dir}: nnU-Net's MSD converter failed: {error}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, True
