"""What a loop's validation result warns about, and the one owner of ``loop_XXX/warnings.json``.

The validate step of every loop checks nnU-Net's ``summary.json`` of the held-out set and records:

- ``no_foreground_predicted``: a class present in the validation labels of which the ensemble predicts
  not one voxel (the model has not learned it);
- ``class_absent_from_validation``: a class in no validation case. Never predicted either, its Dice is
  undefined: nnU-Net writes NaN for it, and so its ``foreground_mean`` is NaN too. The mean Dice is
  then reported as nnU-Net's trainer reports its pseudo Dice, the mean over the classes whose Dice is
  defined (``np.nanmean``), and said to be so;
- ``dice_fell``: the mean Dice fell by more than :data:`DICE_DROP` from the previous loop although the
  budget grew, naming the classes that fell.

``warnings.json`` is ``{"warnings": [{"loop": int, "kind": str, "classes": [names], "message": str},
...]}``; the loop summary line, ``nnactive status`` and the analysis read it (never recompute it), and
an experiment's warnings are the union over its loops (:func:`experiment_warnings`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import attrs
import numpy as np

from nnactive_core.experiment.layout import ExperimentLayout, result_loops
from nnactive_core.io import JsonFileError, atomic_write_json, read_json

NO_FOREGROUND = "no_foreground_predicted"
ABSENT = "class_absent_from_validation"
DICE_FELL = "dice_fell"
KINDS = (NO_FOREGROUND, ABSENT, DICE_FELL)
DICE_DROP = 0.01
"""A fall in mean Dice up to this much counts as noise."""


@attrs.frozen(kw_only=True)
class LoopWarning:
    loop: int
    kind: str
    classes: tuple[str, ...] = attrs.field(converter=tuple)
    message: str

    def to_json(self) -> dict:
        return {"loop": self.loop, "kind": self.kind, "classes": list(self.classes), "message": self.message}

    @classmethod
    def from_json(cls, payload, source: str) -> LoopWarning:
        try:
            classes = payload["classes"]
            if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
                raise TypeError("classes must be a list of names")
            return cls(
                loop=int(payload["loop"]),
                kind=str(payload["kind"]),
                classes=classes,
                message=str(payload["message"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise JsonFileError(source, f"not a loop warning ({error}): {payload!r}") from None


def label_names(labels: Mapping[str, int]) -> dict[str, str]:
    """Label value (as a summary key, a string) -> name, from a dataset's name -> value mapping."""
    return {str(value): name for name, value in labels.items()}


def _name(key, names: Mapping[str, str]) -> str:
    return names.get(str(key), f"label {key}")


def _is_foreground(key) -> bool:
    return str(key) != "0"


def class_dice(summary: Mapping, names: Mapping[str, str]) -> dict[str, float]:
    """Foreground class name -> mean Dice over the validation cases (NaN where undefined)."""
    result = {}
    for key, metrics in summary.get("mean", {}).items():
        if _is_foreground(key):
            value = metrics.get("Dice") if isinstance(metrics, Mapping) else None
            result[_name(key, names)] = math.nan if value is None else float(value)
    return result


@attrs.frozen(kw_only=True)
class MeanDice:
    """nnU-Net's ``foreground_mean`` Dice (``value``), and what is reported when a class makes it NaN:
    the mean over the classes whose Dice is defined."""

    value: float
    defined: float
    undefined: tuple[str, ...]
    classes: int

    @property
    def reported(self) -> float:
        return self.value if math.isfinite(self.value) else self.defined

    def text(self) -> str:
        """``0.4812``, or for a NaN foreground mean what it is instead."""
        if math.isfinite(self.value) or not self.undefined:
            return f"{self.value:.4f}"
        missing = ", ".join(self.undefined)
        if not math.isfinite(self.defined):
            return f"undefined (no class has a defined Dice: {missing})"
        defined = self.classes - len(self.undefined)
        return (
            f"{self.defined:.4f} over {defined} of {self.classes} classes ({missing}: Dice undefined, "
            "in no validation case and never predicted)"
        )


def mean_dice(summary: Mapping, names: Mapping[str, str]) -> MeanDice:
    per_class = class_dice(summary, names)
    value = summary.get("foreground_mean", {}).get("Dice")
    defined = [v for v in per_class.values() if math.isfinite(v)]
    return MeanDice(
        value=math.nan if value is None else float(value),
        defined=float(np.mean(defined)) if defined else math.nan,
        undefined=tuple(name for name, v in per_class.items() if not math.isfinite(v)),
        classes=len(per_class),
    )


def _voxel_counts(summary: Mapping, names: Mapping[str, str]) -> dict[str, tuple[int, int, int]]:
    """Class name -> (reference voxels, predicted voxels, cases containing it) over the validation
    cases; empty when the summary has no per-case counts."""
    counts: dict[str, list[int]] = {}
    for case in summary.get("metric_per_case", []):
        for key, metrics in case.get("metrics", {}).items():
            if not _is_foreground(key) or "n_ref" not in metrics or "n_pred" not in metrics:
                continue
            entry = counts.setdefault(_name(key, names), [0, 0, 0])
            entry[0] += int(metrics["n_ref"])
            entry[1] += int(metrics["n_pred"])
            entry[2] += int(metrics["n_ref"] > 0)
    return {name: (ref, pred, cases) for name, (ref, pred, cases) in counts.items()}


def loop_warnings(
    loop: int, summary: Mapping, names: Mapping[str, str], previous: Mapping | None = None
) -> list[LoopWarning]:
    """The warnings of ``loop`` from its validation ``summary`` and the previous loop's (if any)."""
    warnings = []
    counts = _voxel_counts(summary, names)
    cases = len(summary.get("metric_per_case", []))
    silent = [name for name, (ref, pred, _) in counts.items() if ref > 0 and pred == 0]
    if silent:
        present = ", ".join(f"{name} (in {counts[name][2]} of {cases} cases)" for name in silent)
        warnings.append(
            LoopWarning(
                loop=loop,
                kind=NO_FOREGROUND,
                classes=silent,
                message=f"loop {loop}: the validation prediction has no voxel of {present}: not learned",
            )
        )
    absent = [name for name, (ref, _, _) in counts.items() if ref == 0]
    if absent:
        predicted = [name for name in absent if counts[name][1] > 0]
        detail = "their Dice is undefined (nnU-Net: NaN) and left out of the mean"
        if predicted:
            detail += f"; predicted anyway: {', '.join(predicted)} (Dice 0)"
        warnings.append(
            LoopWarning(
                loop=loop,
                kind=ABSENT,
                classes=absent,
                message=f"loop {loop}: {', '.join(absent)} in no validation case: {detail}",
            )
        )
    if previous is not None:
        before, now = mean_dice(previous, names).reported, mean_dice(summary, names).reported
        if math.isfinite(before) and math.isfinite(now) and now < before - DICE_DROP:
            old, new = class_dice(previous, names), class_dice(summary, names)
            fell = sorted(
                (name for name in new if name in old and new[name] < old[name]),
                key=lambda name: new[name] - old[name],
            )
            change = ", ".join(f"{name} {new[name] - old[name]:+.3f}" for name in fell)
            warnings.append(
                LoopWarning(
                    loop=loop,
                    kind=DICE_FELL,
                    classes=fell,
                    message=(
                        f"loop {loop}: mean Dice fell from {before:.4f} (loop {loop - 1}) to {now:.4f} "
                        f"although the budget grew" + (f"; fell: {change}" if change else "")
                    ),
                )
            )
    return warnings


def write_warnings(path: Path, warnings: Sequence[LoopWarning]) -> None:
    atomic_write_json(Path(path), {"warnings": [warning.to_json() for warning in warnings]})


def read_warnings(path: Path) -> list[LoopWarning]:
    """The warnings of one loop; none when the file does not exist (a loop not validated yet, or
    an experiment from before warnings were recorded)."""
    path = Path(path)
    if not path.is_file():
        return []
    entries = read_json(path, expect=dict).get("warnings")
    if not isinstance(entries, list):
        raise JsonFileError(path, "expected a 'warnings' list")
    return [LoopWarning.from_json(entry, str(path)) for entry in entries]


def experiment_warnings(layout: ExperimentLayout) -> list[LoopWarning]:
    """Every loop's warnings, in loop order."""
    return [w for loop in result_loops(layout.results) for w in read_warnings(layout.warnings_file(loop))]
