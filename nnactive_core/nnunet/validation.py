"""Evaluate the fold ensemble on the held-out validation set (images + full labels).

The ensemble prediction is nnU-Net's own (mean of the fold logits); segmentations are written to a
prediction folder and scored with nnU-Net's per-case metrics (``compute_metrics``: TP/FP/FN/TN outside
``ignore``, Dice and IoU NaN for an empty class). The summary has the format of
``compute_metrics_on_folder`` (``metric_per_case``, ``mean``, ``foreground_mean``); it is computed in this
process because nnU-Net's version always starts a spawn pool.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import numpy as np
import torch
from nnunetv2.evaluation.evaluate_predictions import compute_metrics, save_summary_json
from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
from nnunetv2.utilities.json_export import recursive_fix_for_json_export

from nnactive_core.io import atomic_write_with
from nnactive_core.nnunet.environment import resolve_device
from nnactive_core.nnunet.fold_models import CHECKPOINT, load_fold_models
from nnactive_core.threads import torch_threads


def validate_ensemble(
    model_dir: Path,
    folds: Sequence[int],
    cases: Iterable[tuple[str, Sequence[Path], Path]],
    *,
    summary_file: Path,
    prediction_folder: Path,
    device: str | torch.device | None = None,
    tile_step_size: float = 0.5,
    mirroring: bool = True,
    checkpoint_name: str = CHECKPOINT,
    snapshots: int = 1,
) -> dict:
    """Predict every ``(case_id, image_files, label_file)`` with the ensemble of ``folds`` (each with
    ``snapshots`` members: :func:`~nnactive_core.nnunet.fold_models.member_checkpoints`), write the
    segmentations to ``prediction_folder`` and nnU-Net's ``summary.json`` to ``summary_file`` (both
    atomically). Mirroring applies only if the models were trained with mirror axes. Returns the summary
    (label keys as ints, as nnU-Net returns it)."""
    device = device if isinstance(device, torch.device) else resolve_device(device)
    models = load_fold_models(
        model_dir, folds, device=device, checkpoint_name=checkpoint_name, snapshots=snapshots
    )
    with redirect_stdout(StringIO()):  # a notice about on-device prediction, printed for every CPU
        predictor = nnUNetPredictor(
            tile_step_size=tile_step_size,
            use_mirroring=mirroring and models.mirror_axes is not None,
            perform_everything_on_device=device.type == "cuda",
            device=device,
            allow_tqdm=False,
        )
    predictor.manual_initialization(
        models.network,
        models.plans_manager,
        models.configuration_manager,
        models.parameters,
        models.dataset_json,
        models.trainer_name,
        models.mirror_axes,
    )
    preprocessor = models.configuration_manager.preprocessor_class(verbose=False)
    reader_writer = models.plans_manager.image_reader_writer_class()
    ending = models.dataset_json["file_ending"]
    labels = models.label_manager.foreground_labels
    if models.label_manager.has_regions:
        labels = models.label_manager.foreground_regions
    prediction_folder = Path(prediction_folder)
    prediction_folder.mkdir(parents=True, exist_ok=True)

    per_case = []
    with torch_threads():
        for case, image_files, label_file in cases:
            data, _, properties = preprocessor.run_case(
                [str(p) for p in image_files],
                None,
                models.plans_manager,
                models.configuration_manager,
                models.dataset_json,
            )
            logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data)).cpu()
            segmentation = convert_predicted_logits_to_segmentation_with_correct_shape(
                logits,
                models.plans_manager,
                models.configuration_manager,
                models.label_manager,
                properties,
                False,
                torch.get_num_threads(),
            )
            target = prediction_folder / f"{case}{ending}"
            atomic_write_with(
                target,
                lambda tmp, seg=segmentation, p=properties: reader_writer.write_seg(seg, str(tmp), p),
                suffix=ending,
            )
            per_case.append(
                compute_metrics(
                    str(label_file), str(target), reader_writer, labels, models.label_manager.ignore_label
                )
            )
    if not per_case:
        raise ValueError("no validation cases given")
    summary = summarize(per_case, labels)
    atomic_write_with(Path(summary_file), lambda tmp: save_summary_json(summary, str(tmp)))
    return summary


def summarize(per_case: list[dict], labels: Sequence) -> dict:
    """``metric_per_case``, per-label nan-means and the foreground mean, as ``compute_metrics_on_folder``
    computes them."""
    metric_names = list(per_case[0]["metrics"][labels[0]].keys())
    with warnings.catch_warnings():
        # a label absent from every case has a NaN mean, as in nnU-Net
        warnings.filterwarnings("ignore", message="Mean of empty slice", category=RuntimeWarning)
        means = {
            label: {
                name: np.nanmean([case["metrics"][label][name] for case in per_case]) for name in metric_names
            }
            for label in labels
        }
    foreground = {
        name: np.mean([means[label][name] for label in labels if label not in (0, "0")])
        for name in metric_names
    }
    for case in per_case:
        recursive_fix_for_json_export(case)
    recursive_fix_for_json_export(means)
    recursive_fix_for_json_export(foreground)
    return {"metric_per_case": per_case, "mean": means, "foreground_mean": foreground}
