"""Plan shrinking and sharing a base dataset's plans with experiments (no nnU-Net planning run here)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from nnunet import ct_dataset as ct

from nnactive_core.nnunet.environment import NnunetFolders
from nnactive_core.nnunet.planning import (
    INTENSITY_KEY,
    PROVENANCE_KEY,
    prepare_experiment_plans,
    shrink_plans,
)
from nnactive_core.nnunet.profiles import get_profile


def _plans(spacing=(1.0, 1.0, 1.0)) -> dict:
    """An nnU-Net default 3d_fullres plan for 96^3 images, as the planner writes it."""
    return {
        "dataset_name": "Dataset900_Toy",
        "plans_name": "nnUNetPlans",
        "configurations": {
            "2d": {"patch_size": [96, 96], "batch_size": 12},
            "3d_fullres": {
                "data_identifier": "nnUNetPlans_3d_fullres",
                "batch_size": 2,
                "patch_size": [96, 96, 96],
                "spacing": list(spacing),
                "architecture": {
                    "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                    "arch_kwargs": {
                        "n_stages": 5,
                        "features_per_stage": [32, 64, 128, 256, 320],
                        "kernel_sizes": [[3, 3, 3]] * 5,
                        "strides": [[1, 1, 1]] + [[2, 2, 2]] * 4,
                        "n_conv_per_stage": [2, 2, 2, 2, 2],
                        "n_conv_per_stage_decoder": [2, 2, 2, 2],
                    },
                },
            },
        },
    }


def test_tiny_profile_shrinks_patch_batch_features_and_topology():
    plans = _plans()
    shrunk = shrink_plans(plans, get_profile("tiny"))
    config = shrunk["configurations"]["3d_fullres"]
    arch = config["architecture"]["arch_kwargs"]
    assert config["patch_size"] == [32, 32, 32] and config["batch_size"] == 2
    assert arch["n_stages"] == 4 and arch["features_per_stage"] == [8, 16, 32, 64]
    assert arch["strides"] == [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]]
    assert len(arch["kernel_sizes"]) == 4
    assert arch["n_conv_per_stage"] == [2, 2, 2, 2] and arch["n_conv_per_stage_decoder"] == [2, 2, 2]
    assert all(type(v) is int for v in config["patch_size"])
    json.dumps(shrunk)
    assert plans["configurations"]["3d_fullres"]["patch_size"] == [96, 96, 96], "input left untouched"
    assert shrunk["configurations"]["2d"] == plans["configurations"]["2d"]


def test_default_profile_keeps_the_plan():
    plans = _plans()
    assert shrink_plans(plans, get_profile("default")) == plans


def test_anisotropic_spacing_pools_in_plane_first():
    shrunk = shrink_plans(_plans(spacing=(3.0, 1.0, 1.0)), get_profile("tiny", patch_size=(16, 48, 48)))
    arch = shrunk["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    assert arch["strides"][1] == [1, 2, 2]
    assert arch["kernel_sizes"][0] == [1, 3, 3]


def test_stage_limit_and_feature_cap():
    shrunk = shrink_plans(_plans(), get_profile("default", n_stages=3, base_features=16, max_features=32))
    arch = shrunk["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]
    assert arch["n_stages"] == 3 and arch["features_per_stage"] == [16, 32, 32]
    assert len(arch["strides"]) == 3 and arch["n_conv_per_stage_decoder"] == [2, 2]


def test_unknown_configuration_is_named():
    with pytest.raises(KeyError, match="3d_lowres"):
        shrink_plans(_plans(), get_profile("tiny"), configuration="3d_lowres")


def test_experiment_gets_renamed_shrunk_plans_and_its_own_dataset_json(tmp_path):
    base = NnunetFolders.under(tmp_path / "raw")
    group = NnunetFolders.under(tmp_path / "data" / "Dataset900_Toy")
    with pytest.raises(FileNotFoundError, match="plan the base dataset Dataset900_Toy first"):
        prepare_experiment_plans(base, "Dataset900_Toy", group, "Dataset001_X", get_profile("tiny"))
    planned = base.preprocessed_dataset("Dataset900_Toy")
    planned.mkdir(parents=True)
    oracle = {"0": {"mean": -500.0, "std": 400.0, "percentile_00_5": -1000.0, "percentile_99_5": 300.0}}
    (planned / "nnUNetPlans.json").write_text(json.dumps({**_plans(), INTENSITY_KEY: oracle}))
    (planned / "dataset_fingerprint.json").write_text(json.dumps({"spacings": [], INTENSITY_KEY: oracle}))
    with pytest.raises(FileNotFoundError, match="create the experiment dataset first"):
        prepare_experiment_plans(base, "Dataset900_Toy", group, "Dataset001_X", get_profile("tiny"))
    raw = ct.make_raw_dataset(group.raw_dataset("Dataset001_X"), n_train=2)
    truth = ct.read_image(raw / "labelsTr" / "ct_tr000.nii.gz")
    partial = np.full(truth.shape, ct.IGNORE, dtype=np.uint8)
    partial[8:16, 10:18, 10:18] = truth[8:16, 10:18, 10:18]
    ct.write_image(partial, raw / "labelsTr" / "ct_tr000.nii.gz")
    ct.write_image(np.full(truth.shape, ct.IGNORE, dtype=np.uint8), raw / "labelsTr" / "ct_tr001.nii.gz")
    (raw / "dataset.json").write_text(json.dumps(ct.dataset_json(2, with_ignore=True)))

    plans_file = prepare_experiment_plans(base, "Dataset900_Toy", group, "Dataset001_X", get_profile("tiny"))
    plans = json.loads(plans_file.read_text())
    assert plans_file == group.preprocessed_dataset("Dataset001_X") / "nnUNetPlans.json"
    assert plans["dataset_name"] == "Dataset001_X"
    assert plans["configurations"]["3d_fullres"]["patch_size"] == [32, 32, 32]
    target = group.preprocessed_dataset("Dataset001_X")
    assert json.loads((target / "dataset.json").read_text())["labels"]["ignore"] == ct.IGNORE
    fingerprint = json.loads((target / "dataset_fingerprint.json").read_text())
    assert fingerprint["spacings"] == [], "the image-derived part is the base's"
    # the label-derived part is the experiment's: organ and lesion inside its one patch
    assert plans[INTENSITY_KEY] == fingerprint[INTENSITY_KEY] != oracle
    assert 0 < plans[INTENSITY_KEY]["0"]["percentile_00_5"] < plans[INTENSITY_KEY]["0"]["mean"]
    assert fingerprint[PROVENANCE_KEY]["cases"] == ["ct_tr000"]
    assert fingerprint[PROVENANCE_KEY]["source"] == "annotated foreground voxels"
    assert sorted(p.name for p in target.iterdir()) == [
        "dataset.json",
        "dataset_fingerprint.json",
        "nnUNetPlans.json",
    ]
