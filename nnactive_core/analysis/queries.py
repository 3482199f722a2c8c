"""Pictures of the queried patches: for each loop, one PNG per patch and an overview of all of them.

Each picture is the axial slice through the patch centre (array axis 0 = z), intensity-windowed to the
0.5-99.5 percentiles of the slice, with the ground-truth labels overlaid (background and ignore left
transparent) and the patch drawn as a red rectangle. Labels come from the base dataset's full
``labelsTr`` (the oracle); when it cannot be found, from the experiment's partial ``labelsTr``.

Files: ``OUT/loop_XXX/loop-LL__id-PP__img-<case>.png`` and ``OUT/overview-loop_XXX.png``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Collection
from pathlib import Path

import numpy as np

from nnactive_core.analysis.collect import raw_folder
from nnactive_core.analysis.plots import pyplot, save_figure
from nnactive_core.datasets.raw_format import DATASET_JSON, SPLITS
from nnactive_core.experiment.layout import (
    CONFIG_FILE,
    DATA_ENV,
    RESULTS_ENV,
    RESULTS_GROUP,
    loop_folder_name,
)
from nnactive_core.io import JsonFileError, UnsafePathError, plain_name, read_json
from nnactive_core.patches.patch import Patch, loop_files

OVERVIEW_COLUMNS = 5


class QueryPictureError(ValueError):
    """The experiment, its raw folder or an image cannot be found (the message says which)."""


def resolve_experiment(experiment: str) -> Path:
    """A results folder given as a path, or an experiment name (with or without ``DatasetNNN_``)
    looked up below ``$nnActive_results`` (default ``$nnActive_data``)."""
    path = Path(experiment)
    if (path / CONFIG_FILE).is_file():
        return path
    root = os.environ.get(RESULTS_ENV) or os.environ.get(DATA_ENV)
    if not root:
        raise QueryPictureError(
            f"{experiment!r} is not a results folder, and neither nnActive_results nor "
            "nnActive_data is set to look the name up"
        )
    matches = [
        folder
        for folder in sorted(Path(root).glob(f"*/{RESULTS_GROUP}/*"))
        if (folder / CONFIG_FILE).is_file()
        and (folder.name == experiment or re.sub(r"^Dataset\d+_", "", folder.name) == experiment)
    ]
    if len(matches) != 1:
        listed = ", ".join(map(str, matches))
        found = f"{len(matches)} experiments ({listed})" if matches else "no experiment"
        raise QueryPictureError(f"experiment {experiment!r}: {found} below {root}")
    return matches[0]


def _read(path: Path) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _first_existing(*paths: Path | None) -> Path | None:
    return next((p for p in paths if p is not None and p.is_file()), None)


def _window(image: np.ndarray) -> np.ndarray:
    low, high = np.percentile(image, [0.5, 99.5])
    return np.clip((image - low) / (high - low if high > low else 1.0), 0, 1)


def _label_handles(values, names: dict[int, str]) -> list:
    from matplotlib.patches import Patch as LegendPatch

    colormap = pyplot().get_cmap("tab10")
    handles = [LegendPatch(color=colormap(v % 10), alpha=0.6, label=names.get(v, str(v))) for v in values]
    handles.append(LegendPatch(fill=False, edgecolor="red", label="queried patch"))
    return handles


def draw_patch(
    axis,
    image_slice: np.ndarray,
    label_slice: np.ndarray,
    patch: Patch,
    hidden: set[int],
    names: dict[int, str],
    title: str,
    legend: bool = True,
) -> list[int]:
    """One axial slice through the patch, labels overlaid, the patch as a red rectangle; returns the
    label values shown."""
    from matplotlib.patches import Rectangle

    axis.imshow(_window(image_slice.astype(float)), cmap="gray", interpolation="nearest")
    overlay = label_slice.astype(float)
    overlay[np.isin(label_slice, list(hidden))] = np.nan
    axis.imshow(
        overlay % 10, cmap=pyplot().get_cmap("tab10"), vmin=0, vmax=9.999, alpha=0.45, interpolation="nearest"
    )
    axis.add_patch(
        Rectangle(
            (patch.start[2] - 0.5, patch.start[1] - 0.5),
            patch.size[2],
            patch.size[1],
            fill=False,
            edgecolor="red",
            linewidth=1.5,
        )
    )
    axis.set_title(title, fontsize=8)
    axis.set_xlabel("x (voxels)", fontsize=7)
    axis.set_ylabel("y (voxels)", fontsize=7)
    axis.tick_params(labelsize=6)
    present = [int(v) for v in np.unique(label_slice) if int(v) not in hidden]
    if legend:
        axis.legend(handles=_label_handles(present, names), fontsize=6, loc="upper right", framealpha=0.7)
    return present


def _dataset_info(raw: Path) -> tuple[str, dict[int, str], set[int], int]:
    path = raw / DATASET_JSON
    if not path.is_file():
        raise QueryPictureError(f"{path}: missing; cannot tell the file ending and labels")
    try:
        info = read_json(path, expect=dict)
        ending = plain_name(info.get("file_ending", ".nii.gz"), source=f"{path} field 'file_ending'")
    except (JsonFileError, UnsafePathError) as error:
        raise QueryPictureError(str(error)) from None
    names, ignore, background = {}, set(), 0
    for name, value in info.get("labels", {}).items():
        value = int(value[0] if isinstance(value, list) else value)
        if name == "ignore":
            ignore.add(value)
        else:
            names[value] = name
        if name == "background":
            background = value
    return ending, names, ignore, background


def _loop_records(raw: Path, ending: str) -> list[tuple[int, list[tuple[str, dict]]]]:
    """Per loop file, (case, record) of each patch; a case name that could lead out of the dataset
    (or a PNG out of the output folder) is refused, naming the file and the entry."""
    loops = []
    for loop, path in loop_files(raw):
        try:
            records = read_json(path, expect=dict).get("patches", [])
            if not isinstance(records, list):
                raise QueryPictureError(f"{path}: 'patches' must be a list")
            cases = []
            for index, record in enumerate(records):
                source = f"{path} patch #{index} field 'file'"
                file = plain_name(record.get("file") if isinstance(record, dict) else None, source=source)
                cases.append((plain_name(file.removesuffix(ending), source=source), record))
        except (JsonFileError, UnsafePathError) as error:
            raise QueryPictureError(str(error)) from None
        loops.append((loop, cases))
    return loops


def visualize_queries(
    experiment: str | Path, output: Path, loops: Collection[int] | None = None
) -> list[Path]:
    """Write the per-patch pictures and one overview per loop (of ``loops``, default all); returns
    the overview paths."""
    results = resolve_experiment(str(experiment))
    try:
        config = read_json(results / CONFIG_FILE, expect=dict)
        raw, base = raw_folder(results, config)
    except (JsonFileError, UnsafePathError) as error:
        raise QueryPictureError(str(error)) from None
    if raw is None:
        raise QueryPictureError(f"{results}: cannot find the experiment's raw folder (no paths.json?)")
    ending, names, ignore, background = _dataset_info(raw)
    wanted = loops
    loops = [
        (loop, records) for loop, records in _loop_records(raw, ending) if wanted is None or loop in wanted
    ]
    if not loops:
        raise QueryPictureError(
            f"{raw}: no loop_XXX.json files" + (f" of loops {sorted(wanted)}" if wanted else "")
        )
    plt = pyplot()
    images_dir, labels_dir = SPLITS["pool"]
    overviews = []
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for loop, records in loops:
        drawn = []
        # one case's volumes at a time: visit patches grouped by case, draw the overview in query order
        for index, (case, record) in sorted(enumerate(records), key=lambda item: item[1][0]):
            if case not in cache:
                image_path = _first_existing(
                    raw / images_dir / f"{case}_0000{ending}",
                    base / images_dir / f"{case}_0000{ending}" if base else None,
                )
                label_path = _first_existing(
                    base / labels_dir / record["file"] if base else None,
                    raw / labels_dir / record["file"],
                )
                if image_path is None or label_path is None:
                    raise QueryPictureError(
                        f"loop {loop}: image or labels of case {case!r} not found under {raw} or {base}"
                    )
                cache = {case: (_read(image_path), _read(label_path))}
            image, labels = cache[case]
            try:
                patch = Patch.from_json(record, shape=labels.shape)
            except (KeyError, TypeError, ValueError) as error:
                raise QueryPictureError(
                    f"loop {loop}: patch {index}: invalid record {record!r}: {error}"
                ) from None
            if not patch.fits_in(labels.shape):
                raise QueryPictureError(
                    f"loop {loop}: patch {index} {patch.start}+{patch.size} does not fit "
                    f"case {case!r} of shape {labels.shape}"
                )
            z = patch.start[0] + patch.size[0] // 2
            drawn.append((index, case, patch, image[z].copy(), labels[z].copy()))
            figure, axis = plt.subplots(figsize=(5, 5))
            draw_patch(
                axis,
                image[z],
                labels[z],
                patch,
                ignore | {background},
                names,
                f"loop {loop}, patch {index}: {case}\naxial slice z = {z} "
                f"(patch z {patch.start[0]}-{patch.stop[0] - 1}, size {patch.size})",
            )
            save_figure(
                figure,
                Path(output) / loop_folder_name(loop) / f"loop-{loop:02d}__id-{index:02d}__img-{case}.png",
            )
        if drawn:
            drawn.sort(key=lambda item: item[0])
            overviews.append(_overview(drawn, loop, ignore | {background}, names, Path(output)))
    return overviews


def _overview(drawn: list, loop: int, hidden: set[int], names: dict[int, str], output: Path) -> Path:
    plt = pyplot()
    columns = min(len(drawn), OVERVIEW_COLUMNS)
    rows = math.ceil(len(drawn) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.4 * rows), squeeze=False)
    shown: set[int] = set()
    for axis, (index, case, patch, image_slice, label_slice) in zip(axes.flat, drawn, strict=False):
        shown.update(
            draw_patch(
                axis,
                image_slice,
                label_slice,
                patch,
                hidden,
                names,
                f"#{index} {case}, z = {patch.start[0] + patch.size[0] // 2}",
                legend=False,
            )
        )
    for axis in list(axes.flat)[len(drawn) :]:
        axis.set_visible(False)
    figure.legend(
        handles=_label_handles(sorted(shown), names),
        loc="lower center",
        ncol=6,
        fontsize=8,
        bbox_to_anchor=(0.5, -0.08),
        frameon=False,
    )
    figure.suptitle(
        f"Loop {loop}: {len(drawn)} queried patches (red boxes; axial slice through each "
        "patch centre; colours: ground-truth labels)"
    )
    figure.tight_layout()
    return save_figure(figure, output / f"overview-loop_{loop:03d}.png")
