"""Where an experiment's files live, and what each file is called (see docs/architecture.md,
"Folders"): the one owner of the names of the results folder's files. The formats belong to the
modules that read and write each file; the nnU-Net folders inside a group are named by
:class:`~nnactive_core.nnunet.environment.NnunetFolders`, and loop files by
:func:`~nnactive_core.patches.patch.loop_file_name`.

Three roots come from the environment: ``nnActive_raw`` (base datasets and their plans),
``nnActive_data`` (the experiments' nnU-Net folders, one group per base dataset) and
``nnActive_results`` (defaults to ``nnActive_data``). Experiment folders are named
``DatasetNNN_<experiment name>``; NNN is unique within the group so that plain nnU-Net tools pointed at
the group's folders find each experiment by id.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import attrs

from nnactive_core.datasets.raw_format import SPLITS
from nnactive_core.io import plain_name
from nnactive_core.nnunet.environment import NnunetFolders

RAW_ENV = "nnActive_raw"
DATA_ENV = "nnActive_data"
RESULTS_ENV = "nnActive_results"
FOLDER_PATTERN = re.compile(r"^Dataset(\d+)_(.+)$")
IDS_FOLDER = ".nnactive_ids"
FIRST_ID = 1
RESULTS_GROUP = "nnActive_results"
ANALYSIS_FOLDER = "analysis"
PLANNING_LOCK_FILE = ".nnactive_planning.lock"
"""In a base dataset's preprocessed folder: taken by the one process that plans it."""

# the results folder of one experiment
CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
PATHS_FILE = "paths.json"
VERSIONS_FILE = "versions.json"
LOCK_FILE = "lock.json"
LOG_FILE = "log.txt"
ANNOTATED_CLASSES_FILE = "annotated_classes.json"
ANNOTATIONS_FOLDER = "annotations"
TRACKING_FILE = "tracking.json"
STOP_SET_FILE = "stop_set.json"
# the results of one loop, in its loop folder
SUMMARY_FILE = "summary.json"
COSTS_FILE = "costs.json"
QUERY_FILE = "query.json"
TIMINGS_FILE = "timings.json"
QUERY_PICTURES_FOLDER = "query_pictures"
WARNINGS_FILE = "warnings.json"
STABILITY_FILE = "stability.json"
STOP_SET_PREDICTIONS_FILE = "stop_set_predictions.npz"
LOOP_FOLDER_PATTERN = re.compile(r"^loop_(\d{3,})$")


def loop_folder_name(loop: int) -> str:
    """``loop_XXX``: a loop's results folder, and the prefix of what is kept per loop beside the
    models (archived folds, validation predictions)."""
    return f"loop_{loop:03d}"


def result_loops(results: Path) -> list[int]:
    """Indices of the loops that have a folder in the results folder ``results``, sorted."""
    if not Path(results).is_dir():
        return []
    found = (LOOP_FOLDER_PATTERN.match(path.name) for path in Path(results).iterdir() if path.is_dir())
    return sorted(int(match.group(1)) for match in found if match)


class LayoutError(RuntimeError):
    """A missing environment variable or an experiment that cannot be found."""


def _folder_name(instance, attribute, value) -> None:
    """Dataset and experiment folder names come from configs, grid files and listings; as plain names
    they keep every path built from them inside its root."""
    plain_name(value, source=f"experiment layout field {attribute.name!r}")


@attrs.frozen(kw_only=True)
class Roots:
    raw: Path = attrs.field(converter=lambda p: Path(p).absolute())
    data: Path = attrs.field(converter=lambda p: Path(p).absolute())
    results: Path = attrs.field(converter=lambda p: Path(p).absolute())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Roots:
        env = os.environ if env is None else env
        missing = [name for name in (RAW_ENV, DATA_ENV) if not env.get(name)]
        if missing:
            raise LayoutError(
                f"environment variable {' and '.join(missing)} not set: set {RAW_ENV} (base datasets, "
                f"with nnUNet_raw/ and nnUNet_preprocessed/ inside) and {DATA_ENV} (experiments); "
                f"{RESULTS_ENV} defaults to {DATA_ENV}"
            )
        return cls(raw=env[RAW_ENV], data=env[DATA_ENV], results=env.get(RESULTS_ENV) or env[DATA_ENV])

    @classmethod
    def under(cls, folder: Path) -> Roots:
        """The demo's roots: ``raw``, ``data`` and ``results`` below one folder."""
        folder = Path(folder)
        return cls(raw=folder / "raw", data=folder / "data", results=folder / "results")

    def env(self) -> dict[str, str]:
        return {RAW_ENV: str(self.raw), DATA_ENV: str(self.data), RESULTS_ENV: str(self.results)}

    @property
    def base_nnunet(self) -> NnunetFolders:
        """The nnU-Net folders of the base datasets (planned once, shared by their experiments)."""
        return NnunetFolders.under(self.raw)

    def base_raw(self, dataset: str) -> Path:
        return self.base_nnunet.raw_dataset(plain_name(dataset, source="base dataset"))

    def base_preprocessed(self, dataset: str) -> Path:
        return self.base_nnunet.preprocessed_dataset(plain_name(dataset, source="base dataset"))

    def group_nnunet(self, dataset: str) -> NnunetFolders:
        """The nnU-Net folders of the experiments of one base dataset."""
        return NnunetFolders.under(self.data / plain_name(dataset, source="base dataset"))

    def results_group(self, dataset: str) -> Path:
        return self.results / plain_name(dataset, source="base dataset") / RESULTS_GROUP

    def analysis(self, dataset: str) -> Path:
        """Tables and plots over the experiments of one base dataset (what the demo writes)."""
        return self.results / plain_name(dataset, source="base dataset") / ANALYSIS_FOLDER


@attrs.frozen(kw_only=True)
class ExperimentLayout:
    """All paths of one experiment; ``folder`` is ``DatasetNNN_<experiment name>``."""

    roots: Roots
    base: str = attrs.field(validator=_folder_name)
    folder: str = attrs.field(validator=_folder_name)

    @property
    def experiment_id(self) -> int:
        return int(FOLDER_PATTERN.match(self.folder).group(1))  # type: ignore[union-attr]

    @property
    def name(self) -> str:
        return FOLDER_PATTERN.match(self.folder).group(2)  # type: ignore[union-attr]

    @property
    def group(self) -> Path:
        return self.roots.data / self.base

    @property
    def nnunet(self) -> NnunetFolders:
        """The nnU-Net folders of the experiment's group; the experiment is the dataset ``folder``."""
        return self.roots.group_nnunet(self.base)

    @property
    def raw(self) -> Path:
        return self.nnunet.raw_dataset(self.folder)

    @property
    def labels(self) -> Path:
        """The partial labels the annotator writes, nnU-Net's training labels."""
        return self.raw / SPLITS["pool"][1]

    @property
    def preprocessed(self) -> Path:
        return self.nnunet.preprocessed_dataset(self.folder)

    @property
    def trainings(self) -> Path:
        return self.nnunet.results_dataset(self.folder)

    @property
    def results(self) -> Path:
        return self.roots.results_group(self.base) / self.folder

    @property
    def base_raw(self) -> Path:
        return self.roots.base_raw(self.base)

    @property
    def base_preprocessed(self) -> Path:
        return self.roots.base_preprocessed(self.base)

    @property
    def base_planning_lock(self) -> Path:
        """What the experiments of a base dataset lock to plan it one at a time."""
        return self.base_preprocessed / PLANNING_LOCK_FILE

    @property
    def config_file(self) -> Path:
        return self.results / CONFIG_FILE

    @property
    def state_file(self) -> Path:
        return self.results / STATE_FILE

    @property
    def paths_file(self) -> Path:
        return self.results / PATHS_FILE

    @property
    def versions_file(self) -> Path:
        return self.results / VERSIONS_FILE

    @property
    def lock_file(self) -> Path:
        return self.results / LOCK_FILE

    @property
    def log_file(self) -> Path:
        return self.results / LOG_FILE

    @property
    def annotated_classes_file(self) -> Path:
        """Case -> label values annotated in it, for the class-ensuring splits."""
        return self.results / ANNOTATED_CLASSES_FILE

    @property
    def id_reservation(self) -> Path:
        """What keeps the experiment's id taken within its group (see :func:`reserve_experiment_id`)."""
        return self.group / IDS_FOLDER / str(self.experiment_id)

    @property
    def tracking_file(self) -> Path:
        """The trackers the experiment runs with and their failures in the latest run."""
        return self.results / TRACKING_FILE

    @property
    def stop_set_file(self) -> Path:
        """The pool cases the stopping signal is measured on (:mod:`nnactive_core.experiment.stopping`)."""
        return self.results / STOP_SET_FILE

    def stability_file(self, loop: int) -> Path:
        """The stopping signal measured with the loop's models (loops that made a query)."""
        return self.loop_results(loop) / STABILITY_FILE

    def stop_set_predictions(self, loop: int) -> Path:
        """The ensemble segmentations of the stop set with the loop's models, for the next loop."""
        return self.loop_results(loop) / STOP_SET_PREDICTIONS_FILE

    def annotations(self, loop: int) -> Path:
        """Where the annotators' labels imported for loop file ``loop`` are kept (human mode)."""
        return self.results / ANNOTATIONS_FOLDER / loop_folder_name(loop)

    def loop_results(self, loop: int) -> Path:
        return self.results / loop_folder_name(loop)

    def summary_file(self, loop: int) -> Path:
        """nnU-Net's validation summary of the loop's ensemble on the held-out set."""
        return self.loop_results(loop) / SUMMARY_FILE

    def costs_file(self, loop: int) -> Path:
        return self.loop_results(loop) / COSTS_FILE

    def query_file(self, loop: int) -> Path:
        """Every candidate of the query made with the loop's models (it creates loop file ``loop + 1``)."""
        return self.loop_results(loop) / QUERY_FILE

    def timings_file(self, loop: int) -> Path:
        """Seconds per step of the loop; it exists once the loop's first step after setup finished."""
        return self.loop_results(loop) / TIMINGS_FILE

    def query_pictures(self, loop: int) -> Path:
        """Pictures of the patches of loop file ``loop``, drawn for the trackers."""
        return self.loop_results(loop) / QUERY_PICTURES_FOLDER

    def warnings_file(self, loop: int) -> Path:
        """What the loop's validation result warns about (classes not learned, Dice falling)."""
        return self.loop_results(loop) / WARNINGS_FILE

    def validation_predictions(self, loop: int) -> Path:
        """The loop's segmentations of the held-out set, beside the models."""
        return self.trainings / f"{loop_folder_name(loop)}__predVal"

    def archived_models(self, loop: int, models: Path) -> Path:
        """Where loop ``loop`` keeps its trained ``models`` folder once the next loop trains afresh."""
        return models.with_name(f"{loop_folder_name(loop)}__{models.name}")

    def nnunet_env(self) -> dict[str, str]:
        """The standard nnU-Net variables that make plain nnU-Net tools see this experiment's group."""
        return self.nnunet.env()

    def paths_record(self) -> dict[str, str]:
        """What ``paths.json`` stores for the analysis."""
        return {
            "experiment": self.name,
            "folder": self.folder,
            "base_dataset": self.base,
            "base_raw": str(self.base_raw),
            "raw": str(self.raw),
            "preprocessed": str(self.preprocessed),
            "trainings": str(self.trainings),
            "results": str(self.results),
            **self.nnunet_env(),
        }


def _used_ids(group_paths: list[Path]) -> set[int]:
    ids = set()
    for folder in group_paths:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            match = FOLDER_PATTERN.match(entry.name)
            if match:
                ids.add(int(match.group(1)))
            elif entry.name.isdigit() and folder.name == IDS_FOLDER:
                ids.add(int(entry.name))
    return ids


def reserve_experiment_id(roots: Roots, base: str) -> int:
    """The next free id of the group, reserved by an exclusive ``mkdir`` so that two setups running
    at once never share one."""
    ids_folder = roots.data / base / IDS_FOLDER
    ids_folder.mkdir(parents=True, exist_ok=True)
    nnunet = roots.group_nnunet(base)
    folders = [ids_folder, nnunet.raw, nnunet.preprocessed, nnunet.results, roots.results_group(base)]
    while True:
        candidate = max(_used_ids(folders), default=FIRST_ID - 1) + 1
        try:
            (ids_folder / str(candidate)).mkdir()
            return candidate
        except FileExistsError:
            continue


def experiment_folder_name(experiment_id: int, name: str) -> str:
    return f"Dataset{experiment_id:03d}_{name}"


def list_experiments(roots: Roots) -> list[ExperimentLayout]:
    """Every experiment under ``nnActive_results`` (folders holding a config.json), sorted."""
    found = []
    if not roots.results.is_dir():
        return found
    for group in sorted(roots.results.iterdir()):
        results = group / RESULTS_GROUP
        if not results.is_dir():
            continue
        for folder in sorted(results.iterdir()):
            if FOLDER_PATTERN.match(folder.name) and (folder / CONFIG_FILE).is_file():
                found.append(ExperimentLayout(roots=roots, base=group.name, folder=folder.name))
    return found


def find_experiment(roots: Roots, name: str) -> ExperimentLayout | None:
    """The experiment called ``name`` (with or without its ``DatasetNNN_`` prefix); None if absent."""
    matches = [e for e in list_experiments(roots) if name in (e.name, e.folder)]
    if len(matches) > 1:
        listed = ", ".join(str(e.results) for e in matches)
        raise LayoutError(f"experiment {name!r} is ambiguous: {listed}; pass the DatasetNNN_ folder name")
    return matches[0] if matches else None
