"""Where an experiment's files live (see docs/architecture.md, "Folders").

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

RAW_ENV = "nnActive_raw"
DATA_ENV = "nnActive_data"
RESULTS_ENV = "nnActive_results"
FOLDER_PATTERN = re.compile(r"^Dataset(\d+)_(.+)$")
IDS_FOLDER = ".nnactive_ids"
FIRST_ID = 1


class LayoutError(RuntimeError):
    """A missing environment variable or an experiment that cannot be found."""


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

    def base_raw(self, dataset: str) -> Path:
        return self.raw / "nnUNet_raw" / dataset

    def base_preprocessed(self, dataset: str) -> Path:
        return self.raw / "nnUNet_preprocessed" / dataset

    def results_group(self, dataset: str) -> Path:
        return self.results / dataset / "nnActive_results"

    def analysis(self, dataset: str) -> Path:
        """Tables and plots over the experiments of one base dataset (what the demo writes)."""
        return self.results / dataset / "analysis"


@attrs.frozen(kw_only=True)
class ExperimentLayout:
    """All paths of one experiment; ``folder`` is ``DatasetNNN_<experiment name>``."""

    roots: Roots
    base: str
    folder: str

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
    def nnunet_raw_root(self) -> Path:
        return self.group / "nnUNet_raw"

    @property
    def nnunet_preprocessed_root(self) -> Path:
        return self.group / "nnUNet_preprocessed"

    @property
    def nnunet_results_root(self) -> Path:
        return self.group / "nnUNet_results"

    @property
    def raw(self) -> Path:
        return self.nnunet_raw_root / self.folder

    @property
    def labels(self) -> Path:
        return self.raw / "labelsTr"

    @property
    def preprocessed(self) -> Path:
        return self.nnunet_preprocessed_root / self.folder

    @property
    def trainings(self) -> Path:
        return self.nnunet_results_root / self.folder

    @property
    def results(self) -> Path:
        return self.roots.results_group(self.base) / self.folder

    @property
    def base_raw(self) -> Path:
        return self.roots.base_raw(self.base)

    @property
    def base_preprocessed(self) -> Path:
        return self.roots.base_preprocessed(self.base)

    def loop_results(self, loop: int) -> Path:
        return self.results / f"loop_{loop:03d}"

    def timings(self, loop: int) -> Path:
        """Seconds per step of the loop; it exists once the loop's first step after setup finished."""
        return self.loop_results(loop) / "timings.json"

    def nnunet_env(self) -> dict[str, str]:
        """The standard nnU-Net variables that make plain nnU-Net tools see this experiment's group."""
        return {
            "nnUNet_raw": str(self.nnunet_raw_root),
            "nnUNet_preprocessed": str(self.nnunet_preprocessed_root),
            "nnUNet_results": str(self.nnunet_results_root),
        }

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
    folders = [
        ids_folder,
        roots.data / base / "nnUNet_raw",
        roots.data / base / "nnUNet_preprocessed",
        roots.data / base / "nnUNet_results",
        roots.results_group(base),
    ]
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
        results = group / "nnActive_results"
        if not results.is_dir():
            continue
        for folder in sorted(results.iterdir()):
            if FOLDER_PATTERN.match(folder.name) and (folder / "config.json").is_file():
                found.append(ExperimentLayout(roots=roots, base=group.name, folder=folder.name))
    return found


def find_experiment(roots: Roots, name: str) -> ExperimentLayout | None:
    """The experiment called ``name`` (with or without its ``DatasetNNN_`` prefix); None if absent."""
    matches = [e for e in list_experiments(roots) if name in (e.name, e.folder)]
    if len(matches) > 1:
        listed = ", ".join(str(e.results) for e in matches)
        raise LayoutError(f"experiment {name!r} is ambiguous: {listed}; pass the DatasetNNN_ folder name")
    return matches[0] if matches else None
