"""The plans nnU-Net writes for a dataset: the file's name, reading it, and what the rest of nnactive
takes from it (the planned patch size). Nothing here imports nnunetv2, so a command that only looks at
the plans stays light."""

from __future__ import annotations

from pathlib import Path

from nnactive_core.io import JsonFileError, read_json
from nnactive_core.nnunet.environment import NnunetFolders

PLANS = "nnUNetPlans"
CONFIGURATION = "3d_fullres"


def plans_file(folders: NnunetFolders, dataset: str) -> Path:
    return folders.preprocessed_dataset(dataset) / f"{PLANS}.json"


def load_plans(folders: NnunetFolders, dataset: str) -> dict:
    """The plans of a prepared dataset (error naming the file when it is missing)."""
    path = plans_file(folders, dataset)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: plan the dataset (or prepare the experiment plans) first")
    return read_json(path, expect=dict)


def is_planned(folders: NnunetFolders, dataset: str) -> bool:
    """Plans that exist and parse: nnU-Net writes them in place, so a planning run killed mid-write
    leaves a file that must not count."""
    try:
        return "configurations" in read_json(plans_file(folders, dataset))
    except JsonFileError:
        return False


def planned_patch_size(
    folders: NnunetFolders, dataset: str, configuration: str = CONFIGURATION
) -> list[int] | None:
    """The patch size nnU-Net planned for ``configuration``; None when the dataset is not planned or
    its plans do not hold one."""
    try:
        return read_json(plans_file(folders, dataset))["configurations"][configuration]["patch_size"]
    except (JsonFileError, KeyError, TypeError):
        return None
