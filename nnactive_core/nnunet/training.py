"""Train one cross-validation fold of the partial-label trainer."""

from __future__ import annotations

import random
import shutil
import time
import warnings
from contextlib import nullcontext, redirect_stdout
from io import StringIO
from pathlib import Path

import attrs
import numpy as np
import torch
from batchgenerators.utilities.file_and_folder_operations import load_json

from nnactive_core.nnunet.environment import (
    NnunetFolders,
    augmentation_workers,
    environment_variable,
    nnunet_paths,
    resolve_device,
)
from nnactive_core.nnunet.fold_models import CHECKPOINT
from nnactive_core.nnunet.plans import CONFIGURATION, PLANS, load_plans
from nnactive_core.nnunet.preprocessing import preprocessed_cases
from nnactive_core.nnunet.profiles import TrainingProfile
from nnactive_core.nnunet.schedules import training_schedule
from nnactive_core.nnunet.trainer import EpochCallback, nnActiveTrainer
from nnactive_core.threads import torch_threads


@attrs.frozen(kw_only=True)
class FoldResult:
    fold: int
    losses: list[float]
    """Mean training loss per epoch."""
    checkpoint: Path
    seconds: float


def model_folder(folders: NnunetFolders, dataset: str, configuration: str = CONFIGURATION) -> Path:
    """``nnUNet_results/<dataset>/nnActiveTrainer__nnUNetPlans__<configuration>``: the folder that holds
    ``fold_k/checkpoint_final.pth`` plus ``plans.json`` and ``dataset.json`` for prediction."""
    return folders.results_dataset(dataset) / f"{nnActiveTrainer.__name__}__{PLANS}__{configuration}"


def seed_everything(seed: int, loop: int, fold: int) -> None:
    """Seed Python, numpy and torch from (experiment seed, loop, fold)."""
    sequence = np.random.SeedSequence([seed & 0xFFFFFFFF, loop, fold])
    value = int(sequence.generate_state(1)[0])
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


def build_trainer(
    folders: NnunetFolders,
    dataset: str,
    fold: int,
    profile: TrainingProfile,
    *,
    device: torch.device,
    on_epoch: EpochCallback | None = None,
    configuration: str = CONFIGURATION,
    verbose: bool = False,
    start_from: Path | None = None,
    snapshots: int = 1,
) -> nnActiveTrainer:
    """An un-initialised trainer for ``fold`` of a prepared and preprocessed dataset (``start_from``: a
    checkpoint to warm-start from; ``snapshots``: members of a snapshot ensemble)."""
    plans = load_plans(folders, dataset)
    plans["continue_training"] = False  # nnUNetTrainer.__init__ pops this key
    dataset_json = load_json(str(folders.preprocessed_dataset(dataset) / "dataset.json"))
    with nnunet_paths(folders), _console(verbose):
        trainer = nnActiveTrainer(
            plans=plans, configuration=configuration, fold=fold, dataset_json=dataset_json, device=device
        )
    trainer.configure(
        profile,
        on_epoch=on_epoch,
        verbose=verbose,
        schedule=training_schedule(profile, warm=start_from is not None, snapshots=snapshots),
        start_weights=start_from,
        snapshots=snapshots,
    )
    return trainer


def train_fold(
    folders: NnunetFolders,
    dataset: str,
    fold: int,
    profile: TrainingProfile,
    *,
    seed: int = 0,
    loop: int = 0,
    device: str | torch.device | None = None,
    on_epoch: EpochCallback | None = None,
    configuration: str = CONFIGURATION,
    verbose: bool = False,
    start_from: Path | None = None,
    snapshots: int = 1,
) -> FoldResult:
    """Train ``fold`` on the cases of ``splits_final.json`` and return its per-epoch losses and final
    checkpoint. An existing ``fold_<fold>`` folder is replaced. The training starts from scratch, or
    from the network weights of the checkpoint ``start_from`` (a warm start, with the profile's warm
    schedule: :func:`training_schedule`); ``snapshots > 1`` also keeps that many members of a snapshot
    ensemble (:func:`~nnactive_core.nnunet.fold_models.member_checkpoints`).

    ``on_epoch(epoch, mean_train_loss)`` is called after every epoch (for progress bars). nnU-Net's
    console output is shown only with ``verbose``; its log file is written either way."""
    device = device if isinstance(device, torch.device) else resolve_device(device)
    splits = folders.preprocessed_dataset(dataset) / "splits_final.json"
    if not splits.is_file():
        raise FileNotFoundError(f"{splits} not found: write the cross-validation splits first")
    folds = load_json(str(splits))
    if not 0 <= fold < len(folds):
        raise ValueError(f"fold {fold} does not exist: {splits} has {len(folds)} folds")
    missing = sorted(
        set(folds[fold]["train"] + folds[fold]["val"]) - preprocessed_cases(folders, dataset, configuration)
    )
    if missing:
        raise FileNotFoundError(
            f"fold {fold} of {splits} uses cases that are not preprocessed: {', '.join(missing)}"
        )
    if start_from is not None and not Path(start_from).is_file():
        raise FileNotFoundError(f"{start_from} not found: no model to warm-start fold {fold} from")
    fold_dir = model_folder(folders, dataset, configuration) / f"fold_{fold}"
    if fold_dir.exists():
        shutil.rmtree(fold_dir)

    seed_everything(seed, loop, fold)
    start = time.perf_counter()
    trainer = build_trainer(
        folders,
        dataset,
        fold,
        profile,
        device=device,
        on_epoch=on_epoch,
        configuration=configuration,
        verbose=verbose,
        start_from=start_from,
        snapshots=snapshots,
    )
    workers = str(augmentation_workers(device))
    # no stdout redirection here: the caller's progress display writes to stdout from on_epoch
    with nnunet_paths(folders), environment_variable("nnUNet_n_proc_DA", workers), torch_threads():
        with warnings.catch_warnings():
            # cases whose patches were all sampled from ignore regions are expected in active learning
            warnings.filterwarnings("ignore", message=".*No annotated pixels in image.*")
            trainer.run_training()
    losses = [float(v) for v in trainer.logger.get_value("train_losses", step=None)]
    checkpoint = Path(trainer.output_folder) / CHECKPOINT
    if not checkpoint.is_file():
        raise RuntimeError(f"training of fold {fold} finished without writing {checkpoint}")
    return FoldResult(fold=fold, losses=losses, checkpoint=checkpoint, seconds=time.perf_counter() - start)


def _console(verbose: bool):
    return nullcontext() if verbose else redirect_stdout(StringIO())
