"""Fingerprint and plan a dataset once, shrink plans to a training profile, share them with experiments.

Experiments of one base dataset use the same (pre-resampled) images, so the base is planned once
(:func:`plan_dataset`) and every experiment gets a copy of its fingerprint and plans, renamed to the
experiment dataset and shrunk to the training profile (:func:`prepare_experiment_plans`). The base is
planned with its full labels, but the one label-dependent part of a fingerprint, the foreground
intensity statistics that CT normalisation uses, is replaced in the experiment's copy by statistics
from the experiment's own partial labels (:mod:`nnactive_core.nnunet.fingerprint`): no experiment's
plans see labels it has not bought. The preprocessed data does not depend on patch size, batch size or
features, so shrinking needs no re-preprocessing.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Sequence
from contextlib import nullcontext, redirect_stdout
from io import StringIO
from pathlib import Path

from nnunetv2.experiment_planning.experiment_planners.network_topology import get_pool_and_conv_props

from nnactive_core.io import atomic_write_json, atomic_write_with, read_json
from nnactive_core.nnunet.environment import (
    NnunetFolders,
    default_processes,
    environment_variable,
    nnunet_paths,
)
from nnactive_core.nnunet.fingerprint import ANNOTATED, INTENSITY_SAMPLES
from nnactive_core.nnunet.plans import CONFIGURATION, PLANS, plans_file
from nnactive_core.nnunet.profiles import TrainingProfile

FINGERPRINT = "dataset_fingerprint.json"
INTENSITY_KEY = "foreground_intensity_properties_per_channel"
"""Where nnU-Net's fingerprint and plans keep the foreground intensity statistics."""
PROVENANCE_KEY = "nnactive_foreground_intensity"
"""Added to an experiment's fingerprint: which voxels of which cases its statistics come from."""
_MAX_FEATURES_3D = 320
_MIN_FEATURE_MAP_EDGE = 4


def plan_dataset(
    folders: NnunetFolders,
    dataset: str,
    *,
    num_processes: int | None = None,
    verify: bool = False,
    verbose: bool = False,
) -> Path:
    """Extract the fingerprint of ``folders.raw/dataset`` and plan it with nnU-Net's default planner.

    Writes ``dataset_fingerprint.json``, ``nnUNetPlans.json`` and ``dataset.json`` into
    ``folders.preprocessed/dataset`` and returns the plans file. ``num_processes`` sizes the spawn pool
    (default: CPUs, at most 8, at most one per case)."""
    # imported here: the planner pulls in seconds of imports that training and prediction do not need
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import (
        DatasetFingerprintExtractor,
    )
    from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    raw = folders.raw_dataset(dataset)
    if not (raw / "dataset.json").is_file():
        raise FileNotFoundError(f"{raw / 'dataset.json'} not found: not an nnU-Net raw dataset")
    n_cases = sum(1 for _ in (raw / "labelsTr").glob("*")) if (raw / "labelsTr").is_dir() else None
    processes = num_processes or default_processes(n_cases)
    # planning sets torch threads to nnUNet_n_proc_DA, which fails for 0
    with nnunet_paths(folders), environment_variable("nnUNet_n_proc_DA", str(processes)):
        with nullcontext() if verbose else redirect_stdout(StringIO()):
            if verify:
                verify_dataset_integrity(str(raw), processes)
            extractor = DatasetFingerprintExtractor(dataset, processes, verbose=verbose)
            extractor.num_foreground_voxels_for_intensitystats = INTENSITY_SAMPLES
            extractor.show_progress_bar = verbose
            extractor.run(overwrite_existing=True)
            planner = ExperimentPlanner(dataset, plans_name=PLANS)
            planner.plan_experiment()
    return plans_file(folders, dataset)


def shrink_plans(plans: dict, profile: TrainingProfile, configuration: str = CONFIGURATION) -> dict:
    """A copy of ``plans`` whose ``configuration`` uses the profile's patch size, batch size, features and
    stage limit (``None`` fields keep the planned values). The network topology is re-derived with
    nnU-Net's rule whenever the patch or the number of stages changes."""
    plans = copy.deepcopy(plans)
    if configuration not in plans.get("configurations", {}):
        raise KeyError(f"configuration {configuration!r} is not in the plans of {plans.get('dataset_name')}")
    config = plans["configurations"][configuration]
    arch = config["architecture"]["arch_kwargs"]

    if profile.patch_size is not None or profile.n_stages is not None:
        patch = profile.patch_size if profile.patch_size is not None else config["patch_size"]
        if len(patch) != len(config["spacing"]):
            raise ValueError(
                f"patch size {patch} does not match the {len(config['spacing'])}-D configuration"
            )
        _, strides, kernels, patch, _ = get_pool_and_conv_props(
            config["spacing"], list(patch), _MIN_FEATURE_MAP_EDGE, 999999
        )
        if profile.n_stages is not None:
            strides, kernels = strides[: profile.n_stages], kernels[: profile.n_stages]
        arch["strides"] = [[int(s) for s in stage] for stage in strides]
        arch["kernel_sizes"] = [[int(k) for k in stage] for stage in kernels]
        config["patch_size"] = [int(p) for p in patch]
    n_stages = len(arch["strides"])
    arch["n_stages"] = n_stages
    for key in ("n_conv_per_stage", "n_blocks_per_stage"):
        if key in arch:
            arch[key] = _resized(arch[key], n_stages)
    if "n_conv_per_stage_decoder" in arch:
        arch["n_conv_per_stage_decoder"] = _resized(arch["n_conv_per_stage_decoder"], n_stages - 1)

    planned = list(arch["features_per_stage"])
    base = profile.base_features if profile.base_features is not None else planned[0]
    top = profile.max_features if profile.max_features is not None else _MAX_FEATURES_3D
    arch["features_per_stage"] = [int(min(top, base * 2**i)) for i in range(n_stages)]
    if profile.batch_size is not None:
        config["batch_size"] = int(profile.batch_size)
    return plans


def _resized(values, length: int) -> list[int]:
    values = [int(v) for v in values]
    return (values + [values[-1]] * length)[:length]


def prepare_experiment_plans(
    base: NnunetFolders,
    base_dataset: str,
    experiment: NnunetFolders,
    experiment_dataset: str,
    profile: TrainingProfile,
    *,
    cases: Sequence[str] | None = None,
    foreground: str = ANNOTATED,
    configuration: str = CONFIGURATION,
) -> Path:
    """Give ``experiment_dataset`` the base dataset's fingerprint and plans (renamed, shrunk to
    ``profile``) plus its own ``dataset.json`` (the one with ``ignore``), without re-planning.

    The foreground intensity statistics of both come from the experiment's partial labels, read from
    ``cases`` (default: every case of its ``labelsTr``; pass the annotated ones to read no more);
    ``foreground`` says which voxels count (see :mod:`nnactive_core.nnunet.fingerprint`). The base
    must have been planned (:func:`plan_dataset`); the experiment's raw folder and labels must exist.
    Returns the experiment's plans file."""
    from nnactive_core.nnunet.fingerprint import foreground_intensity_statistics

    base_dir = base.preprocessed_dataset(base_dataset)
    for name in (f"{PLANS}.json", FINGERPRINT):
        if not (base_dir / name).is_file():
            raise FileNotFoundError(
                f"{base_dir / name} not found: plan the base dataset {base_dataset} first"
            )
    raw = experiment.raw_dataset(experiment_dataset)
    raw_json = raw / "dataset.json"
    if not raw_json.is_file():
        raise FileNotFoundError(f"{raw_json} not found: create the experiment dataset first")

    intensities = foreground_intensity_statistics(raw, cases, foreground=foreground)
    target = experiment.preprocessed_dataset(experiment_dataset)
    target.mkdir(parents=True, exist_ok=True)
    plans = shrink_plans(read_json(plans_file(base, base_dataset), expect=dict), profile, configuration)
    plans["dataset_name"] = experiment_dataset
    plans[INTENSITY_KEY] = intensities.per_channel
    fingerprint = read_json(base_dir / FINGERPRINT, expect=dict)
    fingerprint[INTENSITY_KEY] = intensities.per_channel
    fingerprint[PROVENANCE_KEY] = intensities.provenance()
    target_plans = plans_file(experiment, experiment_dataset)
    atomic_write_json(target_plans, plans)
    atomic_write_json(target / FINGERPRINT, fingerprint)
    atomic_write_with(target / "dataset.json", lambda tmp: shutil.copyfile(raw_json, tmp))
    return target_plans
