"""The nnU-Net side of a loop, for one experiment: plans, preprocessing, splits, training, validation
and pool prediction.

Only :mod:`nnactive_core.nnunet` imports nnunetv2; this module translates an experiment's layout and
config into its calls, and imports it lazily so that ``nnactive status`` stays light.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nnactive_core.datasets.api import NOT_FREE
from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import ExperimentLayout
from nnactive_core.experiment.lock import waiting_lock
from nnactive_core.experiment.records import read_annotated_classes

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset
    from nnactive_core.experiment.progress import Advance, Reporter
    from nnactive_core.query.engine import CaseInput

IN_PROCESS_PREPROCESSING_VOXELS = 20_000_000
"""Up to this many voxels per preprocessing call (about 2-3 s of work) no worker pool is started."""


def device_name(config: ExperimentConfig) -> str:
    from nnactive_core.nnunet.environment import resolve_device

    return str(resolve_device(config.device))


def profile(config: ExperimentConfig):
    from nnactive_core.nnunet.profiles import get_profile

    return get_profile(config.training_profile, **config.training_overrides)


def loop_seed(config: ExperimentConfig, loop: int, purpose: str) -> int:
    """A seed for one purpose of one loop, derived from the experiment seed."""
    import zlib

    sequence = np.random.SeedSequence([config.seed & 0xFFFFFFFF, loop, zlib.crc32(purpose.encode())])
    return int(sequence.generate_state(1)[0])


# --- plans, preprocessing, splits ----------------------------------------------------------------


def prepare_plans(
    layout: ExperimentLayout, config: ExperimentConfig, dataset: Dataset, reporter: Reporter
) -> None:
    """Plan the base dataset once (shared by all its experiments), then give the experiment a copy of
    the plans shrunk to its training profile, with foreground intensity statistics from its own
    starting-budget labels (read from the annotated cases only, unless ``not-background`` counts the
    un-annotated voxels of every case)."""
    from nnactive_core.nnunet.fingerprint import ANNOTATED
    from nnactive_core.nnunet.planning import plan_dataset, prepare_experiment_plans
    from nnactive_core.nnunet.plans import is_planned

    base = layout.roots.base_nnunet
    if not is_planned(base, layout.base):
        # grid tasks that start together would all plan the shared base dataset into the same files
        waiting = f"waiting for another process to plan the base dataset {layout.base}"
        with waiting_lock(layout.base_planning_lock, on_wait=lambda: reporter.say(waiting)):
            if not is_planned(base, layout.base):
                reporter.say(f"planning the base dataset {layout.base} with nnU-Net (once)")
                plan_dataset(base, layout.base)
    annotated = sorted(read_annotated_classes(layout))
    prepare_experiment_plans(
        base,
        layout.base,
        layout.nnunet,
        layout.folder,
        profile(config),
        cases=annotated if config.intensity_foreground == ANNOTATED else None,
        foreground=config.intensity_foreground,
    )


def preprocess(layout: ExperimentLayout, dataset: Dataset, cases: Sequence[str]) -> list[str]:
    """Preprocess ``cases`` with the experiment's plans. Small loads run in this process: a spawned
    worker first re-imports torch and nnU-Net, seconds that small cases never win back."""
    from nnactive_core.nnunet.preprocessing import preprocess_cases

    voxels = sum(int(np.prod(dataset.shape(case))) for case in cases)
    workers = 1 if voxels <= IN_PROCESS_PREPROCESSING_VOXELS else None
    return preprocess_cases(layout.nnunet, layout.folder, cases, num_processes=workers)


def write_splits(layout: ExperimentLayout, config: ExperimentConfig, loop: int) -> list[str]:
    """``splits_final.json`` over the annotated cases, class-ensuring; returns the warnings."""
    from nnactive_core.nnunet.splits import make_splits, write_splits

    splits = make_splits(
        read_annotated_classes(layout), n_folds=config.folds, seed=loop_seed(config, loop, "splits")
    )
    write_splits(layout.preprocessed / "splits_final.json", splits)
    return list(splits.warnings)


# --- training ------------------------------------------------------------------------------------


def model_folder(layout: ExperimentLayout) -> Path:
    """Where nnU-Net trains the current loop's folds (its standard trainer folder)."""
    from nnactive_core.nnunet.training import model_folder as nnunet_model_folder

    return nnunet_model_folder(layout.nnunet, layout.folder)


def archived_model_folder(layout: ExperimentLayout, loop: int) -> Path:
    return layout.archived_models(loop, model_folder(layout))


EpochDone = Callable[[int, int, float], None]
"""``on_epoch(epoch, epochs, train_loss)`` after each epoch (``epoch`` counted from 0, as nnU-Net does)."""


def warm_start_checkpoint(layout: ExperimentLayout, config: ExperimentConfig, loop: int, fold: int):
    """The checkpoint fold ``fold`` of ``loop`` starts from: the same fold's final weights of the loop
    before, archived after its annotate step (None: train from scratch)."""
    from nnactive_core.nnunet.fold_models import CHECKPOINT

    if not config.warm_start or loop == 0:
        return None
    return archived_model_folder(layout, loop - 1) / f"fold_{fold}" / CHECKPOINT


def train_fold(
    layout: ExperimentLayout, config: ExperimentConfig, loop: int, fold: int, device: str, on_epoch: EpochDone
) -> float:
    """Train one fold, seeded by (experiment seed, loop, fold), from scratch or warm-started
    (:func:`warm_start_checkpoint`); returns the last loss."""
    from nnactive_core.nnunet.schedules import training_schedule
    from nnactive_core.nnunet.training import train_fold as nnunet_train_fold

    training = profile(config)
    start_from = warm_start_checkpoint(layout, config, loop, fold)
    schedule = training_schedule(training, warm=start_from is not None, snapshots=config.snapshots)
    epochs = schedule.epochs if schedule is not None else training.epochs
    with warnings.catch_warnings():
        # nnU-Net's pseudo Dice divides by zero for classes absent from a validation batch: expected
        # with few annotated patches, and noise on the console
        warnings.filterwarnings("ignore", message="invalid value encountered", category=RuntimeWarning)
        result = nnunet_train_fold(
            layout.nnunet,
            layout.folder,
            fold,
            training,
            seed=config.seed,
            loop=loop,
            device=device,
            on_epoch=lambda epoch, loss: on_epoch(epoch, epochs, loss),
            start_from=start_from,
            snapshots=config.snapshots,
        )
    return result.losses[-1] if result.losses else float("nan")


def archive_models(layout: ExperimentLayout, loop: int) -> None:
    """Keep loop k's models as ``loop_XXX__<trainer folder>`` so the next loop trains afresh (or, warm
    started, from them); a repeat after a kill finds them already moved."""
    current, target = model_folder(layout), archived_model_folder(layout, loop)
    if current.is_dir():
        if target.exists():
            shutil.rmtree(target)
        os.replace(current, target)


def clear_models(layout: ExperimentLayout) -> None:
    """Remove half-trained leftovers before a loop's training starts from its first fold."""
    current = model_folder(layout)
    if current.exists():
        shutil.rmtree(current)


# --- validation and prediction -------------------------------------------------------------------


def validate(
    layout: ExperimentLayout,
    config: ExperimentConfig,
    dataset: Dataset,
    loop: int,
    device: str,
    advance: Advance,
) -> dict:
    """Predict the held-out validation set with the ensemble of this loop's folds and evaluate it;
    nnU-Net's ``summary.json`` goes to ``loop_XXX/summary.json`` and is returned. The segmentations are
    kept as ``loop_XXX__predVal`` beside the models."""
    from nnactive_core.nnunet.validation import validate_ensemble

    cases = dataset.validation_cases()

    def stream():
        for index, case in enumerate(cases):
            advance(index, len(cases))
            yield case, dataset.image_files(case, "validation"), dataset.label_file(case, "validation")
        advance(len(cases), len(cases))

    return validate_ensemble(
        model_folder(layout),
        config.trained_folds,
        stream(),
        summary_file=layout.summary_file(loop),
        prediction_folder=layout.validation_predictions(loop),
        device=device,
        tile_step_size=config.val_tile_step,
        mirroring=config.val_mirroring,
        snapshots=config.snapshots,
    )


def pool_inputs(
    layout: ExperimentLayout,
    config: ExperimentConfig,
    dataset: Dataset,
    device: str,
    advance: Advance,
    requires_features: bool = False,
    cases: Sequence[str] | None = None,
) -> Iterator[CaseInput]:
    """The pool (or only ``cases``), one :class:`CaseInput` per case in ``pool_cases()`` order. A case
    is predicted by every fold only when the engine loads it, and its probabilities are dropped when
    the next one is loaded, so one case's stack is alive at a time."""
    from nnactive_core.nnunet.prediction import EnsemblePredictor
    from nnactive_core.query.engine import CaseInput

    predictor = EnsemblePredictor(
        model_folder(layout),
        config.trained_folds,
        device=device,
        tile_step_size=config.query_tile_step,
        mirroring=config.query_mirroring,
        dtype=config.probability_dtype,
        capture_features=requires_features,
        snapshots=config.snapshots,
    )
    cases = dataset.pool_cases() if cases is None else list(cases)
    stream = predictor.predict_cases((case, dataset.image_files(case)) for case in cases)
    current: dict = {}

    def load(case: str, index: int):
        prediction = next(stream)
        if prediction.case != case:
            raise RuntimeError(f"pool prediction out of order: expected {case}, got {prediction.case}")
        current["prediction"] = prediction
        advance(index + 1, len(cases))
        return prediction.probabilities

    def features():
        feature_map = current["prediction"].features
        return feature_map.values, feature_map.factor

    def free_mask(case: str):
        free = dataset.read_free_labels(case)
        return None if free is None else free != NOT_FREE

    for index, case in enumerate(cases):
        yield CaseInput(
            file=case + dataset.file_ending,
            shape=dataset.shape(case),
            load_probabilities=lambda case=case, index=index: load(case, index),
            load_features=features if requires_features else None,
            load_free_mask=lambda case=case: free_mask(case),
        )
    stream.close()
