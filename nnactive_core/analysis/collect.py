"""Find experiments and read their result files into one table.

An experiment's results folder (``.../nnActive_results/DatasetNNN_<experiment>/``) holds
``config.json``, ``state.json``, ``paths.json`` and per loop ``loop_XXX/summary.json`` (nnU-Net's
validation summary), ``loop_XXX/costs.json`` and ``loop_XXX/warnings.json`` (what the validation
result warned about, see :mod:`nnactive_core.experiment.loop_warnings`). The loop files with the
patches live in the experiment's raw folder, which :func:`raw_folder` finds.

The budget of a loop is the *cumulative number of annotated patches*, read from ``costs.json`` or, when
that is missing, counted in the loop files; it is never assumed to be ``loop * qs + sbs``. Unfinished
experiments contribute what exists; everything missing is reported in :attr:`ExperimentResults.problems`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import attrs

from nnactive_core.datasets.raw_format import DATASET_JSON, SPLITS
from nnactive_core.experiment.layout import (
    CONFIG_FILE,
    COSTS_FILE,
    DATA_ENV,
    LOOP_FOLDER_PATTERN,
    PATHS_FILE,
    RAW_ENV,
    STABILITY_FILE,
    STATE_FILE,
    SUMMARY_FILE,
    WARNINGS_FILE,
    loop_folder_name,
    result_loops,
)
from nnactive_core.experiment.loop_warnings import LoopWarning, mean_dice, read_warnings
from nnactive_core.experiment.stopping import read_stability
from nnactive_core.io import JsonFileError, UnsafePathError, read_json
from nnactive_core.nnunet.environment import NnunetFolders
from nnactive_core.patches.patch import loop_files

BUDGET = "budget_patches"
MEAN_DICE = "dice_mean"
FG_PERCENT = "pct_foreground_voxels"
CLASS_DICE_PREFIX = "dice_"
CUMULATIVE_PREFIX = "cum_"
PERCENT_PREFIX = "pct_"
STOP_AGREEMENT = "stop_agreement"
STOP_DISAGREEMENT = "stop_disagreement"
"""The stopping signal of the loop (:mod:`nnactive_core.experiment.stopping`); empty where none."""
RUN_COLUMNS = ("experiment", "base", "strategy", "seed", "loop", BUDGET, "finished")


@attrs.frozen(kw_only=True)
class LoopResult:
    loop: int
    summary: dict | None
    costs: dict | None
    budget: int | None
    warnings: tuple[LoopWarning, ...] = ()
    """What the loop's validation result warned about, as the run recorded it."""
    stability: dict | None = None
    """The stopping signal measured with the loop's models (``stability.json``; loops with a query)."""


@attrs.frozen(kw_only=True)
class ExperimentResults:
    folder: Path
    config: dict[str, Any]
    finished: bool
    raw_folder: Path | None
    base_raw: Path | None
    label_names: dict[str, str]
    """Label value (as the summary's key, a string) -> label name."""
    loops: tuple[LoopResult, ...]
    problems: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def base(self) -> str:
        return str(self.config.get("dataset", "unknown"))


def find_experiments(root: Path) -> list[Path]:
    """Every folder below ``root`` (following symlinks, each real folder once) that holds a
    ``config.json`` and a ``state.json`` or ``loop_XXX`` folder; ``root`` itself may be one."""
    found = []
    seen = set()
    for folder, subfolders, files in os.walk(Path(root), followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        here = Path(folder)
        if CONFIG_FILE in files and (
            STATE_FILE in files or any(LOOP_FOLDER_PATTERN.match(s) for s in subfolders)
        ):
            found.append(here)
            subfolders[:] = []
            continue
        subfolders[:] = sorted(s for s in subfolders if not s.startswith("."))
    return sorted(found)


def raw_folder(results_folder: Path, config: dict[str, Any]) -> tuple[Path | None, Path | None]:
    """The experiment's raw folder (loop files, images) and its base dataset's raw folder.

    ``paths.json`` (written by the runner: ``raw`` or ``raw_folder``, ``base_raw``) wins; otherwise the
    standard layout is tried: the raw folder beside the results group when ``nnActive_results`` equals
    ``nnActive_data``, then ``$nnActive_data`` and ``$nnActive_raw``. A folder ``paths.json`` names
    must carry the experiment's (or the base dataset's) own name, so the file cannot lead the analysis
    into other folders."""
    results_folder = Path(results_folder)
    paths_file = results_folder / PATHS_FILE
    paths = read_json(paths_file, expect=dict) if paths_file.is_file() else {}
    dataset = str(config.get("dataset", ""))
    candidates = [
        _recorded_folder(paths, key, results_folder.name, paths_file) for key in ("raw_folder", "raw")
    ]
    candidates.append(NnunetFolders.under(results_folder.parent.parent).raw_dataset(results_folder.name))
    if os.environ.get(DATA_ENV) and dataset:
        group = NnunetFolders.under(Path(os.environ[DATA_ENV]) / dataset)
        candidates.append(group.raw_dataset(results_folder.name))
    raw = next((Path(c) for c in candidates if c and Path(c).is_dir()), None)
    base_candidates = [_recorded_folder(paths, "base_raw", dataset, paths_file)]
    images = SPLITS["pool"][0]
    if raw is not None and (raw / images).exists():
        base_candidates.append((raw / images).resolve().parent)
    if os.environ.get(RAW_ENV) and dataset:
        base_candidates.append(NnunetFolders.under(os.environ[RAW_ENV]).raw_dataset(dataset))
    base = next((Path(c) for c in base_candidates if c and Path(c).is_dir()), None)
    return raw, base


def _recorded_folder(paths: dict, key: str, name: str, paths_file: Path) -> Path | None:
    value = paths.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or Path(value).name != name or ".." in Path(value).parts:
        raise UnsafePathError(
            f"{paths_file}: field {key!r} is {value!r}, not a folder called {name!r}; refused"
        )
    return Path(value)


def _label_names(*folders: Path | None) -> dict[str, str]:
    for folder in folders:
        if folder is not None and (folder / DATASET_JSON).is_file():
            labels = read_json(folder / DATASET_JSON).get("labels", {})
            names = {}
            for name, value in labels.items():
                if name != "ignore":
                    names[str(value[0] if isinstance(value, list) else value)] = name
            return names
    return {}


def _loop_file_budgets(raw: Path | None) -> dict[int, int]:
    if raw is None:
        return {}
    budgets, total = {}, 0
    for loop, path in loop_files(raw):
        total += len(read_json(path).get("patches", []))
        budgets[loop] = total
    return budgets


def _is_finished(state: dict) -> bool:
    return bool(state.get("finished", state.get("step") == "done"))


def read_experiment(folder: Path) -> ExperimentResults:
    """Read one results folder. Raises ValueError naming the file when config.json is unusable."""
    folder = Path(folder)
    config = read_json(folder / CONFIG_FILE)
    if not isinstance(config, dict) or "strategy" not in config or "seed" not in config:
        raise ValueError(f"{folder / CONFIG_FILE}: needs the fields 'strategy' and 'seed'")
    problems = []
    state = read_json(folder / STATE_FILE) if (folder / STATE_FILE).is_file() else {}
    finished = _is_finished(state)
    steps = config.get("query_steps")
    if not state:
        problems.append("no state.json")
    elif not finished:
        problems.append(
            f"unfinished: at loop {state.get('loop')} step {state.get('step', '?')} of {steps} loops"
        )
    raw, base = raw_folder(folder, config)
    file_budgets = _loop_file_budgets(raw)
    loop_numbers = result_loops(folder)
    loops = []
    for number in loop_numbers:
        loop_folder = folder / loop_folder_name(number)
        summary = read_json(loop_folder / SUMMARY_FILE) if (loop_folder / SUMMARY_FILE).is_file() else None
        costs = read_json(loop_folder / COSTS_FILE) if (loop_folder / COSTS_FILE).is_file() else None
        budget = None
        if costs is not None and "patches" in costs.get("cumulative", {}):
            budget = int(costs["cumulative"]["patches"])
        elif number in file_budgets:
            budget = file_budgets[number]
        try:
            warnings = tuple(read_warnings(loop_folder / WARNINGS_FILE))
        except JsonFileError as error:
            warnings = ()
            problems.append(f"{loop_folder_name(number)}: {WARNINGS_FILE} unreadable: {error.reason}")
        if summary is None:
            problems.append(f"{loop_folder_name(number)}: no {SUMMARY_FILE}")
        if costs is None:
            problems.append(f"{loop_folder_name(number)}: no {COSTS_FILE} (no cost columns)")
        if budget is None:
            problems.append(f"{loop_folder_name(number)}: budget unknown (no {COSTS_FILE} and no loop file)")
        try:
            stability = read_stability(loop_folder / STABILITY_FILE)
        except JsonFileError as error:
            stability = None
            problems.append(f"{loop_folder_name(number)}: {STABILITY_FILE} unreadable: {error.reason}")
        loops.append(
            LoopResult(
                loop=number,
                summary=summary,
                costs=costs,
                budget=budget,
                warnings=warnings,
                stability=stability,
            )
        )
    if isinstance(steps, int) and not state.get("stopped"):
        absent = [n for n in range(steps) if n not in loop_numbers]
        if absent:
            problems.append(f"loops without results: {', '.join(loop_folder_name(n) for n in absent)}")
    return ExperimentResults(
        folder=folder,
        config=config,
        finished=finished,
        raw_folder=raw,
        base_raw=base,
        label_names=_label_names(raw, base),
        loops=tuple(loops),
        problems=tuple(problems),
    )


def class_dice_column(name: str) -> str:
    return f"{CLASS_DICE_PREFIX}{name}"


def _dice(entry: Any) -> float:
    value = entry.get("Dice") if isinstance(entry, dict) else None
    return float(value) if value is not None else math.nan


def _loop_row(experiment: ExperimentResults, loop: LoopResult) -> dict[str, Any]:
    row: dict[str, Any] = {
        "experiment": experiment.name,
        "base": experiment.base,
        "strategy": str(experiment.config["strategy"]),
        "seed": experiment.config["seed"],
        "loop": loop.loop,
        BUDGET: loop.budget,
        "finished": experiment.finished,
        MEAN_DICE: mean_dice(loop.summary, experiment.label_names).reported,
        STOP_AGREEMENT: (loop.stability or {}).get("agreement"),
        STOP_DISAGREEMENT: (loop.stability or {}).get("disagreement"),
    }
    for key, entry in sorted(loop.summary.get("mean", {}).items()):
        name = experiment.label_names.get(str(key), f"label_{key}")
        row[class_dice_column(name)] = _dice(entry)
    if loop.costs is not None:
        pool = loop.costs.get("pool", {})
        for column, value in loop.costs.get("cumulative", {}).items():
            row[f"{CUMULATIVE_PREFIX}{column}"] = value
            if pool.get(column):
                row[f"{PERCENT_PREFIX}{column}"] = 100.0 * value / pool[column]
    return row


def results_table(experiments: list[ExperimentResults]):
    """One row per (experiment, loop) with a summary and a known budget: identifiers, Dice columns
    (``dice_mean``, ``dice_<label name>``), cumulative costs (``cum_<column>``) and their share of the
    pool in percent (``pct_<column>``).

    ``dice_mean`` is nnU-Net's foreground mean; where a class's Dice is undefined (in no validation
    case and never predicted), which makes that NaN, it is the mean over the other classes, as
    nnU-Net's trainer averages, and the loop's warnings say so."""
    import pandas as pd

    rows = [
        _loop_row(experiment, loop)
        for experiment in experiments
        for loop in experiment.loops
        if loop.summary is not None and loop.budget is not None
    ]
    if not rows:
        return pd.DataFrame(columns=[*RUN_COLUMNS, MEAN_DICE])
    return pd.DataFrame(rows).sort_values(["strategy", "seed", BUDGET], ignore_index=True)


def dice_columns(table) -> list[str]:
    """``dice_mean`` first, then the per-class Dice columns in table order."""
    return [MEAN_DICE] + [c for c in table.columns if c.startswith(CLASS_DICE_PREFIX) and c != MEAN_DICE]
