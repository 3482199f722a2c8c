"""End to end: ``nnactive run`` with real nnU-Net on tiny demo data, 2 loops of ``pred_entropy``."""

from __future__ import annotations

import os

import numpy as np
import pytest
import SimpleITK as sitk
from e2e.runs import KILL_POINTS, WRITE_KILL_POINT, read_json, temp_files

from nnactive_core.datasets.nnunet_raw import open_nnunet_raw
from nnactive_core.experiment.oracle import patches_by_file
from nnactive_core.patches.patch import load_loop, loop_files

pytestmark = pytest.mark.e2e


def test_the_experiment_finished_with_one_loop_file_per_loop(e2e_experiment):
    layout, config = e2e_experiment.layout, e2e_experiment.config
    assert read_json(layout.results / "state.json")["step"] == "done"
    assert [index for index, _ in loop_files(layout.raw)] == [0, 1]
    loops = [load_loop(path) for _, path in loop_files(layout.raw)]
    assert [len(patches) for patches in loops] == [config.sbs, config.query_size]
    everything = [patch for patches in loops for patch in patches]
    assert len({(p.file, p.start) for p in everything}) == len(everything)
    for i, a in enumerate(everything):
        assert all(not a.intersects(b) for b in everything[i + 1 :]), f"{a} overlaps another patch"
        assert a.size == tuple(config.patch_size)


def test_partial_labels_hold_ground_truth_exactly_inside_the_queried_patches(e2e_experiment):
    layout = e2e_experiment.layout
    base = open_nnunet_raw(layout.base_raw)
    grouped = patches_by_file(patch for _, path in loop_files(layout.raw) for patch in load_loop(path))
    assert read_json(layout.raw / "dataset.json")["labels"]["ignore"] == base.ignore_label
    for case in base.pool_cases():
        partial = sitk.GetArrayFromImage(sitk.ReadImage(str(layout.labels / f"{case}{base.file_ending}")))
        truth = base.read_labels(case)
        inside = np.zeros(truth.shape, dtype=bool)
        for patch in grouped.get(case + base.file_ending, []):
            inside[patch.slices] = True
        assert np.array_equal(partial[inside], truth[inside]), case
        assert (partial[~inside] == base.ignore_label).all(), case


def test_budget_and_costs_per_loop(e2e_experiment):
    layout, config = e2e_experiment.layout, e2e_experiment.config
    first = read_json(layout.loop_results(0) / "costs.json")
    second = read_json(layout.loop_results(1) / "costs.json")
    assert first["loop"]["patches"] == first["cumulative"]["patches"] == config.sbs
    assert second["loop"]["patches"] == config.query_size
    assert second["cumulative"]["patches"] == config.sbs + config.query_size
    voxels = int(np.prod(config.patch_size))
    assert second["cumulative"]["voxels"] == (config.sbs + config.query_size) * voxels


def test_each_loop_has_a_validation_summary_on_the_held_out_cases(e2e_experiment):
    layout = e2e_experiment.layout
    held_out = open_nnunet_raw(layout.base_raw).validation_cases()
    for loop in (0, 1):
        summary = read_json(layout.loop_results(loop) / "summary.json")
        assert 0.0 <= summary["foreground_mean"]["Dice"] <= 1.0
        assert set(summary["mean"]) == {"1", "2", "3", "4"}
        assert len(summary["metric_per_case"]) == len(held_out)


def test_the_query_records_its_candidates_and_only_changed_cases_are_preprocessed(e2e_experiment):
    layout, config = e2e_experiment.layout, e2e_experiment.config
    query = read_json(layout.loop_results(0) / "query.json")
    chosen = [c for c in query["candidates"] if c["chosen"]]
    assert query["creates"] == "loop_001.json" and len(chosen) == config.query_size
    assert all(c["score"] is not None for c in query["candidates"])
    new_files = {p.file for p in load_loop(layout.raw / "loop_001.json")}
    assert {c["file"] for c in chosen} == new_files
    timings = read_json(layout.loop_results(1) / "timings.json")
    assert sorted(timings["preprocessed"]) == sorted(f.removesuffix(".nii.gz") for f in new_files)
    assert not (layout.loop_results(1) / "query.json").exists()  # the last loop does not query


def test_results_folder_records_versions_paths_and_log(e2e_experiment):
    layout = e2e_experiment.layout
    versions = read_json(layout.results / "versions.json")["distributions"]
    assert {"nnactive-core", "nnactive-random-fg", "nnactive-strategies-bald"} <= set(versions)
    assert read_json(layout.results / "paths.json")["raw"] == str(layout.raw)
    log = (layout.results / "log.txt").read_text()
    assert "loop 1 done (loops 0-1)" in log and "mean Dice" in log
    assert not (layout.results / "lock.json").exists()


def test_the_experiment_folders_are_plain_nnunet_folders(e2e_experiment, monkeypatch):
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    layout = e2e_experiment.layout
    for name, value in layout.nnunet_env().items():
        monkeypatch.setenv(name, value)
    assert maybe_convert_to_dataset_name(layout.experiment_id) == layout.folder
    assert os.path.realpath(layout.raw / "imagesTr") == str(layout.base_raw / "imagesTr")
    assert (layout.preprocessed / "splits_final.json").is_file()
    archived = layout.trainings / "loop_000__nnActiveTrainer__nnUNetPlans__3d_fullres"
    assert (archived / "fold_1" / "checkpoint_final.pth").is_file()


def test_a_run_killed_at_any_point_resumes_to_the_same_loop_files(e2e_runs):
    reference, resumed = e2e_runs.reference.layout, e2e_runs.resumed.layout
    assert [o.returncode for o in e2e_runs.resumed.outputs] == [-9] * len(KILL_POINTS) + [0]
    assert read_json(resumed.results / "state.json")["step"] == "done"
    for (_, ours), (_, theirs) in zip(loop_files(resumed.raw), loop_files(reference.raw), strict=True):
        assert ours.read_bytes() == theirs.read_bytes(), ours.name
    for loop in (0, 1):
        ours = read_json(resumed.loop_results(loop) / "costs.json")
        assert ours == read_json(reference.loop_results(loop) / "costs.json")
    assert "--force" not in " ".join(e2e_runs.resumed.outputs[-1].args)


def test_a_run_killed_inside_a_write_of_the_annotate_step_leaves_no_temporary_file_after_resuming(
    e2e_runs, e2e_base
):
    left = e2e_runs.temp_files[WRITE_KILL_POINT]
    assert [path.name.startswith(".costs.json.") for path in left] == [True], left
    assert not any(path.exists() for path in left)
    assert temp_files(e2e_base / "resumed") == []
    costs = e2e_runs.resumed.layout.costs_file(1)
    assert read_json(costs) == read_json(e2e_runs.reference.layout.costs_file(1))
