"""``nnactive remove``: an experiment's folders removed, and its id freed for the next setup.

An experiment owns four folders (its results, its nnU-Net raw, preprocessed and results folders) and
the reservation of its id. Removal takes the experiment's lock, so a live run refuses it, and touches
nothing else: the base dataset its raw folder links to stays as it is (links are removed, never
followed), and every folder is built from plain names inside the roots. ``config.json`` goes first, so
that a removal killed half-way leaves no listed experiment behind, only folders that a second
``remove`` or the next setup of that name takes away.
"""

from __future__ import annotations

import shutil
from contextlib import nullcontext
from pathlib import Path

from nnactive_core.experiment.layout import ExperimentLayout
from nnactive_core.experiment.lock import ExperimentLock


def experiment_folders(layout: ExperimentLayout) -> list[Path]:
    """Every folder that belongs to the experiment alone: results, nnU-Net raw, preprocessed and
    trainings."""
    return [layout.results, layout.raw, layout.preprocessed, layout.trainings]


def existing_parts(layout: ExperimentLayout) -> list[Path]:
    """What :func:`remove_experiment` would remove now."""
    parts = [*experiment_folders(layout), layout.id_reservation]
    return [path for path in parts if path.exists() or path.is_symlink()]


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def remove_experiment(layout: ExperimentLayout) -> list[Path]:
    """Remove the experiment's folders and free its id; returns what was removed. Raises
    :class:`~nnactive_core.experiment.lock.LockedError` while a live process runs it."""
    removed = existing_parts(layout)
    # without a results folder (a removal killed half-way) there is no lock to take
    with ExperimentLock(layout.results) if layout.results.is_dir() else nullcontext():
        layout.config_file.unlink(missing_ok=True)
        for path in removed:
            _remove(path)
    return removed
