"""Checkpoints written atomically: a fold's ``checkpoint_final.pth`` either is complete or does not
exist, so a training killed while saving (or a full disk) never leaves a truncated file that a
resumed run or prediction could take for a trained fold. A full disk raises
:class:`~nnactive_core.io.DiskFullError` naming the checkpoint, where torch itself reports
``unexpected pos ...``."""

from __future__ import annotations

from pathlib import Path

import torch

from nnactive_core.io import atomic_write_with


def save_checkpoint(checkpoint: dict, path: Path) -> None:
    """``torch.save(checkpoint)`` into a temporary file beside ``path``, then moved into place."""
    atomic_write_with(Path(path), lambda tmp: torch.save(checkpoint, tmp))
