"""A fold's checkpoint is complete or absent: a full disk (or a kill) while torch writes it leaves no
truncated ``checkpoint_final.pth`` that a resumed run could take for a trained fold."""

from __future__ import annotations

import errno

import pytest
import torch

from nnactive_core.io import DiskFullError
from nnactive_core.nnunet import checkpoints
from nnactive_core.nnunet.checkpoints import save_checkpoint


def test_a_checkpoint_is_written_whole(tmp_path):
    target = tmp_path / "fold_0" / "checkpoint_final.pth"
    target.parent.mkdir()
    save_checkpoint({"network_weights": {"w": torch.ones(3)}, "current_epoch": 2}, target)
    loaded = torch.load(target, weights_only=True)
    assert loaded["current_epoch"] == 2 and torch.equal(loaded["network_weights"]["w"], torch.ones(3))
    assert [path.name for path in target.parent.iterdir()] == ["checkpoint_final.pth"]


def test_a_full_disk_names_the_checkpoint_and_leaves_neither_it_nor_a_part(tmp_path, monkeypatch):
    target = tmp_path / "checkpoint_final.pth"

    def full_disk(checkpoint, path):
        with open(path, "wb") as handle:
            handle.write(b"PK\x03\x04 truncated")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints.torch, "save", full_disk)
    with pytest.raises(DiskFullError, match=f"no space left on device while writing {target}"):
        save_checkpoint({"current_epoch": 1}, target)
    assert list(tmp_path.iterdir()) == []
