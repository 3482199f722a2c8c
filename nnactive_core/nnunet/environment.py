"""Process settings nnU-Net reads from the environment, its folders, and the device.

nnU-Net reads some settings once, at import time (``nnUNet_def_n_proc`` becomes
``nnunetv2.configuration.default_num_processes``; ``nnUNet_n_proc_DA`` is probed through a ``hostname``
subprocess when unset), so every module of this package that imports nnunetv2 calls
:func:`configure_process_defaults` first. Values a user exported are never overwritten.

Its folders (``nnUNet_raw``, ``nnUNet_preprocessed``, ``nnUNet_results``) are read lazily from
``os.environ`` by nnU-Net 2.8, so :func:`nnunet_paths` can switch them per experiment inside one process;
spawned worker pools inherit them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    import torch

PATH_VARIABLES = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")
"""nnU-Net's folder variables, in the order raw, preprocessed, results; the standard folders of a group
carry the same names."""
_MAX_DEFAULT_PROCESSES = 8


def usable_cpus() -> int:
    """CPUs this process may run on (respects taskset / cgroup affinity where the OS reports it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_processes(n_jobs: int | None = None) -> int:
    """Worker processes for a pool over ``n_jobs`` items: never more than CPUs or jobs, at most 8."""
    count = min(usable_cpus(), _MAX_DEFAULT_PROCESSES)
    if n_jobs is not None:
        count = min(count, n_jobs)
    return max(1, count)


def configure_process_defaults() -> None:
    """Set the import-time nnU-Net variables to values sized to this machine, unless already set.

    ``nnUNet_n_proc_DA`` stays positive here: planning calls ``torch.set_num_threads`` with it, which
    fails for 0. Training on the CPU lowers it to 0 only while a fold trains
    (see :func:`augmentation_workers`).
    ``nnUNet_compile`` is left alone: nnU-Net never compiles on the CPU and compiles on CUDA by default.
    """
    os.environ.setdefault("nnUNet_def_n_proc", str(default_processes()))
    os.environ.setdefault("nnUNet_n_proc_DA", str(min(12, usable_cpus())))


@attrs.frozen(kw_only=True)
class NnunetFolders:
    """The three nnU-Net base folders of one group of datasets."""

    raw: Path = attrs.field(converter=Path)
    preprocessed: Path = attrs.field(converter=Path)
    results: Path = attrs.field(converter=Path)

    @classmethod
    def under(cls, root: Path) -> NnunetFolders:
        """``root/nnUNet_raw``, ``root/nnUNet_preprocessed``, ``root/nnUNet_results``."""
        raw, preprocessed, results = (Path(root) / name for name in PATH_VARIABLES)
        return cls(raw=raw, preprocessed=preprocessed, results=results)

    def raw_dataset(self, dataset: str) -> Path:
        return self.raw / dataset

    def env(self) -> dict[str, str]:
        """The nnU-Net variables that point plain nnU-Net tools at these folders."""
        folders = (self.raw, self.preprocessed, self.results)
        return {name: str(folder) for name, folder in zip(PATH_VARIABLES, folders, strict=True)}

    def preprocessed_dataset(self, dataset: str) -> Path:
        return self.preprocessed / dataset

    def results_dataset(self, dataset: str) -> Path:
        return self.results / dataset


@contextmanager
def nnunet_paths(folders: NnunetFolders) -> Iterator[NnunetFolders]:
    """Point nnU-Net at ``folders`` inside the block and restore the previous values afterwards, also
    when the block raises."""
    previous = {name: os.environ.get(name) for name in PATH_VARIABLES}
    try:
        for name, value in folders.env().items():
            os.environ[name] = value
        yield folders
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def environment_variable(name: str, value: str | None) -> Iterator[None]:
    """Set (or, with ``None``, leave unchanged) one variable inside the block."""
    previous = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if value is not None:
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous


def augmentation_workers(device: torch.device) -> int:
    """Data-augmentation worker processes for training on ``device``.

    On the CPU the workers compete with torch for the same cores and augmentation of small patches costs
    little, so augmentation runs in the training process (0). On accelerators nnU-Net's own rule applies
    (``nnUNet_n_proc_DA`` or up to 12 per GPU, bounded by the CPUs)."""
    if device.type == "cpu":
        return 0
    exported = os.environ.get("nnUNet_n_proc_DA")
    if exported is not None:
        return max(0, int(exported))
    return min(12, usable_cpus())


def resolve_device(requested: str | None = None) -> torch.device:
    """``None`` or ``"auto"``: CUDA when available, else the CPU. Otherwise the named torch device
    (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``), checked for availability."""
    import torch

    if requested is None or requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError) as error:
        raise ValueError(
            f"unknown device {requested!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} requested but CUDA is not available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {requested!r} requested but only {torch.cuda.device_count()} GPU(s) exist"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {requested!r} requested but MPS is not available")
    return device


def available_memory_bytes() -> int:
    """``MemAvailable`` from ``/proc/meminfo``; where that file is missing, physical memory from sysconf."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 * 1024**3
