"""Reading the plans without nnunetv2: whether a dataset is planned, and its planned patch size."""

import json

from nnactive_core.nnunet.environment import NnunetFolders
from nnactive_core.nnunet.plans import is_planned, planned_patch_size, plans_file


def test_only_readable_plans_count_as_planned(tmp_path):
    folders = NnunetFolders.under(tmp_path)
    plans = plans_file(folders, "Dataset004_H")
    assert plans == tmp_path / "nnUNet_preprocessed" / "Dataset004_H" / "nnUNetPlans.json"
    assert not is_planned(folders, "Dataset004_H")
    plans.parent.mkdir(parents=True)
    plans.write_text('{"configurations": {"3d_fu')  # a planning run killed mid-write
    assert not is_planned(folders, "Dataset004_H")
    plans.write_text(json.dumps({"configurations": {}}))
    assert is_planned(folders, "Dataset004_H")


def test_planned_patch_size_of_the_configuration(tmp_path):
    folders = NnunetFolders.under(tmp_path)
    assert planned_patch_size(folders, "Dataset004_H") is None
    plans = plans_file(folders, "Dataset004_H")
    plans.parent.mkdir(parents=True)
    plans.write_text(json.dumps({"configurations": {"3d_fullres": {"patch_size": [8, 16, 16]}}}))
    assert planned_patch_size(folders, "Dataset004_H") == [8, 16, 16]
    assert planned_patch_size(folders, "Dataset004_H", configuration="2d") is None
    plans.write_text("[]")
    assert planned_patch_size(folders, "Dataset004_H") is None
