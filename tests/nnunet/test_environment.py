"""Process settings, nnU-Net folders and device selection."""

from __future__ import annotations

import os

import pytest
import torch

from nnactive_core.nnunet.environment import (
    NnunetFolders,
    augmentation_workers,
    available_memory_bytes,
    configure_process_defaults,
    default_processes,
    nnunet_paths,
    resolve_device,
)


def test_paths_are_set_inside_and_restored_after_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", "/previous/raw")
    monkeypatch.delenv("nnUNet_results", raising=False)
    folders = NnunetFolders.under(tmp_path)
    with pytest.raises(RuntimeError), nnunet_paths(folders):
        assert os.environ["nnUNet_raw"] == str(tmp_path / "nnUNet_raw")
        assert os.environ["nnUNet_results"] == str(tmp_path / "nnUNet_results")
        raise RuntimeError
    assert os.environ["nnUNet_raw"] == "/previous/raw"
    assert "nnUNet_results" not in os.environ


def test_folders_name_datasets(tmp_path):
    folders = NnunetFolders.under(tmp_path)
    assert folders.preprocessed_dataset("Dataset001_A") == tmp_path / "nnUNet_preprocessed" / "Dataset001_A"


def test_defaults_never_override_a_user_setting(monkeypatch):
    monkeypatch.setenv("nnUNet_def_n_proc", "3")
    monkeypatch.delenv("nnUNet_n_proc_DA", raising=False)
    configure_process_defaults()
    assert os.environ["nnUNet_def_n_proc"] == "3"
    assert int(os.environ["nnUNet_n_proc_DA"]) >= 1


def test_pool_sizes_follow_the_jobs():
    assert default_processes(1) == 1
    assert 1 <= default_processes() <= 8


def test_augmentation_runs_in_process_on_the_cpu(monkeypatch):
    monkeypatch.setenv("nnUNet_n_proc_DA", "6")
    assert augmentation_workers(torch.device("cpu")) == 0
    assert augmentation_workers(torch.device("cuda")) == 6


def test_device_resolution():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_available_memory_is_positive():
    assert available_memory_bytes() > 0
