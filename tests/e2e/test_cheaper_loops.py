"""Warm-started folds and a snapshot ensemble on real nnU-Net (tiny data, 3 loops of 2 folds x 2
snapshots): the schedule each training ran, where its weights came from, the members x classes stack
the query scores, and that a run killed mid-warm-start resumes to the same loop files and validation.
Each option alone (2 loops, one fold) is run twice from the same seed, once killed in the middle of the
training it changes: both give byte-identical loop files and validation."""

from __future__ import annotations

import json

import pytest
import torch
from e2e.runs import DATA_OPTIONS, TRAINING, experiment_in, nnactive, read_json, run_arguments

from nnactive_core.experiment.layout import Roots
from nnactive_core.nnunet.schedules import training_schedule
from nnactive_core.patches.patch import loop_files

pytestmark = pytest.mark.e2e

WARM = {**TRAINING, "epochs": 4, "warm_epochs": 3, "warm_up_epochs": 1, "snapshots": 2}
KILL_POINT = "train:1:1:1"
"""Loop 1 (warm-started), fold 0 done, fold 1 after its first epoch."""


SINGLE_MODES = {
    "warm": (["--warm-start"], "train:1:0:2"),  # loop 1's warm start, after 2 of its 3 epochs
    "snapshots": (["--ensemble", "snapshots"], "train:0:0:3"),  # between the snapshots at epochs 2 and 4
}
"""Each option alone: its arguments and where the resumed run is killed."""


def warm_arguments(
    loops: int = 3, options: tuple[str, ...] = ("--warm-start", "--ensemble", "snapshots")
) -> list[str]:
    arguments = run_arguments()
    arguments[arguments.index("--loops") + 1] = str(loops)
    arguments = [a for a in arguments if not a.startswith("--train-option=")]
    arguments += [f"--train-option={key}={json.dumps(value)}" for key, value in WARM.items()]
    return [*arguments, *options, "--train-folds", "2" if loops == 3 else "1"]


@pytest.fixture(scope="module")
def warm_runs(e2e_base):
    reference = Roots(raw=e2e_base / "raw", data=e2e_base / "warm", results=e2e_base / "warm")
    resumed = Roots(raw=e2e_base / "raw", data=e2e_base / "warm-resumed", results=e2e_base / "warm-resumed")
    first = nnactive(["run", *warm_arguments()], reference)
    assert first.returncode == 0, first.stdout + first.stderr
    killed = nnactive(["run", *warm_arguments()], resumed, kill_at=KILL_POINT)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    last = nnactive(["run", *warm_arguments()], resumed)
    assert last.returncode == 0, last.stdout + last.stderr
    return experiment_in(reference, [first]), experiment_in(resumed, [killed, last])


@pytest.fixture(scope="module", params=sorted(SINGLE_MODES))
def single_mode_runs(request, e2e_base):
    options, kill_point = SINGLE_MODES[request.param]
    arguments = ["run", *warm_arguments(loops=2, options=tuple(options))]
    runs = []
    for name, kill_at in ((f"alone-{request.param}", None), (f"alone-{request.param}-resumed", kill_point)):
        roots = Roots(raw=e2e_base / "raw", data=e2e_base / name, results=e2e_base / name)
        outputs = [nnactive(arguments, roots, kill_at=kill_at)]
        if kill_at:
            assert outputs[0].returncode == -9, outputs[0].stdout + outputs[0].stderr
            outputs.append(nnactive(arguments, roots))
        assert outputs[-1].returncode == 0, outputs[-1].stdout + outputs[-1].stderr
        runs.append(experiment_in(roots, outputs))
    return request.param, *runs


def fold_checkpoint(layout, loop: int, fold: int, name: str = "checkpoint_final.pth") -> dict:
    folder = layout.trainings / f"loop_{loop:03d}__nnActiveTrainer__nnUNetPlans__3d_fullres"
    if loop == 2:  # the last loop's models are not archived
        folder = layout.trainings / "nnActiveTrainer__nnUNetPlans__3d_fullres"
    return torch.load(folder / f"fold_{fold}" / name, map_location="cpu", weights_only=True)


def test_the_name_and_config_record_both_options(warm_runs):
    experiment, _ = warm_runs
    assert experiment.layout.name.endswith("__seed-7__ws-3__ens-snapshots")
    assert (experiment.config.warm_start, experiment.config.ensemble) == (True, "snapshots")
    assert experiment.config.trained_folds == (0, 1)


def test_loop_0_trains_from_scratch_and_later_loops_run_the_warm_schedule(warm_runs):
    from nnactive_core.nnunet.profiles import get_profile

    experiment, _ = warm_runs
    profile = get_profile("tiny", **WARM)
    scratch, warm = (
        training_schedule(profile, snapshots=2),
        training_schedule(profile, warm=True, snapshots=2),
    )
    for fold in (0, 1):
        lrs = fold_checkpoint(experiment.layout, 0, fold)["logging"]["lrs"]
        assert lrs == pytest.approx([scratch.rate(e) for e in range(4)])
        for loop in (1, 2):
            lrs = fold_checkpoint(experiment.layout, loop, fold)["logging"]["lrs"]
            assert lrs == pytest.approx([warm.rate(e) for e in range(3)])
            assert lrs[0] == pytest.approx(0.005)  # the warm-up


def test_each_fold_starts_from_the_same_fold_of_the_loop_before(warm_runs):
    """A warm start moves the weights little (3 epochs x 2 iterations from trained weights): each
    fold's loop-1 weights are far closer to its own loop-0 weights than to the other fold's."""
    experiment, _ = warm_runs

    def distance(a: dict, b: dict) -> float:
        return sum(float((a[k].float() - b[k].float()).norm()) for k in a if a[k].is_floating_point())

    before = [fold_checkpoint(experiment.layout, 0, fold)["network_weights"] for fold in (0, 1)]
    after = [fold_checkpoint(experiment.layout, 1, fold)["network_weights"] for fold in (0, 1)]
    for fold, other in ((0, 1), (1, 0)):
        assert distance(after[fold], before[fold]) < 0.5 * distance(after[fold], before[other])


def test_snapshots_are_distinct_members_of_the_query_stack(warm_runs):
    from nnactive_core.nnunet.prediction import EnsemblePredictor

    experiment, _ = warm_runs
    layout = experiment.layout
    first = fold_checkpoint(layout, 0, 0, "checkpoint_snapshot_0.pth")["network_weights"]
    final = fold_checkpoint(layout, 0, 0)["network_weights"]
    assert any(not torch.equal(first[k], final[k]) for k in final)
    folder = layout.trainings / "nnActiveTrainer__nnUNetPlans__3d_fullres"
    predictor = EnsemblePredictor(folder, (0, 1), device="cpu", snapshots=2)
    case = sorted((layout.base_raw / "imagesTr").glob("*_0000.nii.gz"))[0]
    prediction = next(predictor.predict_cases([(case.name[: -len("_0000.nii.gz")], [case])]))
    stack = prediction.probabilities
    assert stack.shape[:2] == (4, 5)  # 2 folds x 2 snapshots, background + 4 demo classes
    assert stack.shape[2:] == (DATA_OPTIONS["size"],) * 3
    assert not (stack[0] == stack[1]).all()


def assert_same_loops(reference, resumed, loops: int) -> None:
    ours, theirs = loop_files(resumed.layout.raw), loop_files(reference.layout.raw)
    assert [name for name, _ in ours] == [name for name, _ in theirs] and len(ours) == loops
    for (_, mine), (_, other) in zip(ours, theirs, strict=True):
        assert mine.read_bytes() == other.read_bytes(), mine.name
    for loop in range(loops):
        mine = read_json(resumed.layout.summary_file(loop))
        assert mine["foreground_mean"] == read_json(reference.layout.summary_file(loop))["foreground_mean"]


def test_a_run_killed_mid_warm_start_resumes_to_the_same_loop_files_and_validation(warm_runs):
    assert_same_loops(*warm_runs, loops=3)


def test_each_option_alone_is_deterministic_and_resumes_from_a_kill_mid_training(single_mode_runs):
    mode, reference, resumed = single_mode_runs
    config = reference.config
    assert (config.warm_start, config.ensemble) == (
        (True, "folds") if mode == "warm" else (False, "snapshots")
    )
    assert_same_loops(reference, resumed, loops=2)
