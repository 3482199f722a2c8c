"""The label-dependent part of an experiment's fingerprint: foreground intensity statistics from the
labels the experiment has bought.

nnU-Net's fingerprint holds per input channel the statistics (mean, std, median, min, max, 0.5 and
99.5 percentiles) of the image intensities under foreground labels; the plans copy them, and
``CTNormalization`` clips and scales every CT image by them. Nothing else in the fingerprint or the
plans depends on labels: spacings and the shapes after the nonzero crop come from the images (the crop's
box is the images' nonzero box), the network topology from spacings and shapes, the normalisation scheme
from the channel names. So the base dataset is planned once, and only these statistics are derived per
experiment, from its own partial label maps (``labelsTr`` with ``ignore`` on un-annotated voxels).

Which voxels count as foreground (:data:`FOREGROUND_MODES`):

- ``annotated`` (default): voxels annotated with a foreground label. ``ignore`` is not foreground.
- ``not-background``: every voxel not annotated as background, ``ignore`` included. This is what the
  published nnActive code gets from running ``nnUNetv2_extract_fingerprint`` on the partial dataset,
  whose ``segmentation > 0`` test counts ``ignore`` as foreground, so its "foreground" statistics are
  mostly those of un-annotated tissue and air. Kept as an option for comparison with the published study.

Sampling follows nnU-Net's extractor: the same number of samples from every contributing case, drawn
with replacement by ``collect_foreground_intensities`` (seeded), inside the nonzero crop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from nnactive_core.io import read_json

ANNOTATED = "annotated"
NOT_BACKGROUND = "not-background"
FOREGROUND_MODES = (ANNOTATED, NOT_BACKGROUND)
INTENSITY_SAMPLES = 100_000
"""Intensity samples over the whole dataset (nnU-Net samples 1e8, seconds and a GB for tiny data;
percentiles of normalisation need far fewer)."""
_PERCENTILES = (0.5, 50.0, 99.5)


@attrs.frozen(kw_only=True)
class IntensityStatistics:
    """``per_channel`` as nnU-Net's fingerprint and plans hold it (channel index as a string ->
    statistics); ``cases`` and ``voxels`` say what it was computed from, ``source`` which voxels."""

    per_channel: dict[str, dict[str, float]]
    cases: tuple[str, ...]
    voxels: int
    source: str

    def provenance(self) -> dict:
        return {"source": self.source, "cases": list(self.cases), "voxels": self.voxels}


def _foreground(labels: np.ndarray, ignore: int | None, foreground: str) -> np.ndarray:
    """Voxels counted as foreground, as a segmentation nnU-Net's sampler reads (``> 0``)."""
    mask = labels > 0
    if foreground == ANNOTATED and ignore is not None:
        mask &= labels != ignore
    return mask.astype(np.int8)


def _annotated(labels: np.ndarray, ignore: int | None) -> np.ndarray:
    mask = labels >= 0
    if ignore is not None:
        mask &= labels != ignore
    return mask.astype(np.int8)


def foreground_intensity_statistics(
    raw_dataset: Path,
    cases: Sequence[str] | None = None,
    *,
    foreground: str = ANNOTATED,
    samples: int = INTENSITY_SAMPLES,
) -> IntensityStatistics:
    """Per channel foreground intensity statistics of ``cases`` (default: every case in ``labelsTr``)
    of the nnU-Net raw dataset ``raw_dataset``, from its label maps as they are; ``ignore`` is read
    from its ``dataset.json``.

    A case without a foreground voxel contributes nothing (its image is not read). When no case has
    one, for example a starting budget that hit only background, the statistics fall back to every
    annotated voxel and ``source`` says so."""
    if foreground not in FOREGROUND_MODES:
        raise ValueError(f"foreground must be one of {', '.join(FOREGROUND_MODES)}, got {foreground!r}")
    # imported here: the modes above are read by the experiment config, which must stay light
    from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json

    from nnactive_core.nnunet.preprocessing import case_files

    raw_dataset = Path(raw_dataset)
    dataset_json = read_json(raw_dataset / "dataset.json", expect=dict)
    ignore = dataset_json["labels"].get("ignore")
    ending = dataset_json["file_ending"]
    if cases is None:
        cases = sorted(p.name[: -len(ending)] for p in (raw_dataset / "labelsTr").glob(f"*{ending}"))
    files = {case: case_files(raw_dataset, dataset_json, case) for case in cases}
    if not files:
        raise ValueError(f"{raw_dataset}: no labelled case to take intensity statistics from")
    reader = determine_reader_writer_from_dataset_json(dataset_json, str(next(iter(files.values()))[1]))()
    # as nnU-Net: the dataset's sample budget split evenly over the cases asked for
    per_case = max(1, samples // len(files))
    statistics = _sample(files, reader, lambda labels: _foreground(labels, ignore, foreground), per_case)
    if statistics is not None:
        return attrs.evolve(statistics, source=f"{foreground} foreground voxels")
    statistics = _sample(files, reader, lambda labels: _annotated(labels, ignore), per_case)
    if statistics is None:
        raise ValueError(f"{raw_dataset}: no annotated voxel in {len(files)} case(s)")
    return attrs.evolve(statistics, source="annotated voxels of every class (no annotated foreground)")


def _sample(files: dict, reader, select, per_case: int) -> IntensityStatistics | None:
    """Statistics of the intensities under ``select(labels)`` (4-D, ``> 0`` marks a voxel) in the
    nonzero crop of each case; None when no case has such a voxel."""
    from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import (
        DatasetFingerprintExtractor,
    )
    from nnunetv2.preprocessing.cropping.cropping import crop_to_nonzero

    collected: list[list[np.ndarray]] = []
    cases, voxels = [], 0
    for case, (images_files, label) in files.items():
        labels, _ = reader.read_seg(str(label))
        mask = select(labels)
        if not mask.any():
            continue
        images, _ = reader.read_images([str(p) for p in images_files])
        cropped, cropped_mask, _ = crop_to_nonzero(images, mask)
        intensities, _ = DatasetFingerprintExtractor.collect_foreground_intensities(
            cropped_mask, cropped, num_samples=per_case
        )
        collected = collected or [[] for _ in intensities]
        for channel, values in enumerate(intensities):
            collected[channel].append(np.asarray(values))
        cases.append(case)
        voxels += int((cropped_mask > 0).sum())
    if not cases:
        return None
    return IntensityStatistics(
        per_channel={str(c): _statistics(np.concatenate(v)) for c, v in enumerate(collected)},
        cases=tuple(cases),
        voxels=voxels,
        source="",
    )


def _statistics(values: np.ndarray) -> dict[str, float]:
    """The statistics nnU-Net's extractor writes per channel, in its key names and its precision (that
    of the images)."""
    if values.size == 0:
        raise ValueError("no intensity inside the nonzero region of the annotated voxels")
    low, median, high = np.percentile(values, _PERCENTILES)
    return {
        "mean": float(np.mean(values)),
        "median": float(median),
        "std": float(np.std(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
        "percentile_99_5": float(high),
        "percentile_00_5": float(low),
    }
