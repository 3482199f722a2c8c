"""End to end with real nnU-Net on the CPU: plan a tiny base dataset, share its plans with a partially
annotated experiment, preprocess the annotated cases, split, train two folds, predict the pool, validate.

One session-scoped fixture runs the cycle (about a minute on two cores); the tests inspect its results.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import attrs
import numpy as np
import pytest
from nnunet import toy_dataset as toy

pytestmark = pytest.mark.e2e

BASE = "Dataset900_Toy"
EXPERIMENT = "Dataset001_Toy__patch-12_12_12__seed-0"
EPOCHS = 2


@attrs.frozen(kw_only=True)
class Cycle:
    base: object
    group: object
    annotated: list[str]
    pool: list[str]
    fold_results: list
    epoch_calls: list
    predictions: list
    spilled: object
    spill_folder: Path
    models: Path
    images: dict
    summary: dict
    summary_file: Path
    prediction_folder: Path


def _annotate(label_file: Path, rng: np.random.Generator) -> list:
    """One 12^3 cube on each object and one at random."""
    full = toy.read(label_file)
    boxes = []
    for value in (1, 2):
        centre = np.argwhere(full == value).mean(0).astype(int)
        boxes.append((tuple(int(max(0, c - 6)) for c in centre), 12))
    boxes.append((tuple(int(rng.integers(0, s - 12)) for s in full.shape), 12))
    return boxes


@pytest.fixture(scope="session")
def cycle(tmp_path_factory) -> Cycle:
    from nnactive_core.nnunet.environment import NnunetFolders
    from nnactive_core.nnunet.planning import plan_dataset, prepare_experiment_plans
    from nnactive_core.nnunet.prediction import EnsemblePredictor
    from nnactive_core.nnunet.preprocessing import preprocess_cases
    from nnactive_core.nnunet.profiles import get_profile
    from nnactive_core.nnunet.splits import make_splits, write_splits
    from nnactive_core.nnunet.training import model_folder, train_fold
    from nnactive_core.nnunet.validation import validate_ensemble

    root = tmp_path_factory.mktemp("nnunet_e2e")
    base = NnunetFolders.under(root / "raw")
    group = NnunetFolders.under(root / "data" / BASE)
    base_dir = toy.make_base_dataset(base.raw, BASE, n_train=8, n_val=2, seed=0)
    rng = np.random.default_rng(0)
    labels = sorted((base_dir / "labelsTr").glob("*.nii.gz"))
    # six annotated cases, two left completely unannotated (all ignore)
    annotated = {f.name[: -len(".nii.gz")]: _annotate(f, rng) for f in labels[:6]}
    experiment_dir = toy.make_experiment_dataset(base_dir, group.raw, EXPERIMENT, annotated)

    profile = get_profile("tiny", epochs=EPOCHS, iterations_per_epoch=5, val_iterations_per_epoch=1)
    plan_dataset(base, BASE, num_processes=1)
    prepare_experiment_plans(base, BASE, group, EXPERIMENT, profile)
    preprocess_cases(group, EXPERIMENT, list(annotated), num_processes=1)

    case_labels = {
        case: set(np.unique(toy.read(experiment_dir / "labelsTr" / f"{case}.nii.gz")).tolist()) - {toy.IGNORE}
        for case in annotated
    }
    splits = make_splits(case_labels, n_folds=2, seed=0)
    write_splits(group.preprocessed_dataset(EXPERIMENT) / "splits_final.json", splits)

    epoch_calls = []
    fold_results = [
        train_fold(
            group,
            EXPERIMENT,
            fold,
            profile,
            seed=0,
            loop=0,
            device="cpu",
            on_epoch=lambda epoch, loss, fold=fold: epoch_calls.append((fold, epoch, loss)),
        )
        for fold in (0, 1)
    ]
    models = model_folder(group, EXPERIMENT)
    pool = [f.name[: -len(".nii.gz")] for f in labels]
    images = {case: [experiment_dir / "imagesTr" / f"{case}_0000.nii.gz"] for case in pool}

    predictor = EnsemblePredictor(models, [0, 1], device="cpu", capture_features=True)
    predictions = [
        (p.case, np.array(p.probabilities), p.features, p.spilled)
        for p in predictor.predict_cases((case, images[case]) for case in [pool[0], pool[-1]])
    ]
    spilling = EnsemblePredictor(models, [0, 1], device="cpu", dtype="float32", memory_limit_bytes=0)
    stream = spilling.predict_cases([(pool[1], images[pool[1]])])
    spilled = next(stream)
    spill_folder = Path(spilled.probabilities.filename).parent
    spilled = attrs.evolve(spilled, probabilities=np.array(spilled.probabilities))
    stream.close()

    validation = [
        (
            case.name[: -len("_0000.nii.gz")],
            [case],
            experiment_dir / "labelsVal" / case.name.replace("_0000", ""),
        )
        for case in sorted((experiment_dir / "imagesVal").glob("*.nii.gz"))
    ]
    summary_file = root / "results" / "loop_000" / "summary.json"
    prediction_folder = root / "predVal"
    summary = validate_ensemble(
        models,
        [0, 1],
        validation,
        summary_file=summary_file,
        prediction_folder=prediction_folder,
        device="cpu",
    )
    return Cycle(
        base=base,
        group=group,
        annotated=sorted(annotated),
        pool=pool,
        fold_results=fold_results,
        epoch_calls=epoch_calls,
        predictions=predictions,
        spilled=spilled,
        spill_folder=spill_folder,
        models=models,
        images=images,
        summary=summary,
        summary_file=summary_file,
        prediction_folder=prediction_folder,
    )


def test_experiment_plans_are_renamed_and_shrunk(cycle):
    plans = json.loads((cycle.group.preprocessed_dataset(EXPERIMENT) / "nnUNetPlans.json").read_text())
    config = plans["configurations"]["3d_fullres"]
    assert plans["dataset_name"] == EXPERIMENT
    assert config["patch_size"] == [32, 32, 32] and config["batch_size"] == 2
    assert config["architecture"]["arch_kwargs"]["features_per_stage"] == [8, 16, 32, 64]
    dataset_json = json.loads((cycle.group.preprocessed_dataset(EXPERIMENT) / "dataset.json").read_text())
    assert dataset_json["labels"]["ignore"] == toy.IGNORE


def test_only_annotated_cases_are_preprocessed(cycle):
    from nnactive_core.nnunet.preprocessing import preprocessed_cases

    assert preprocessed_cases(cycle.group, EXPERIMENT) == set(cycle.annotated)
    gt = cycle.group.preprocessed_dataset(EXPERIMENT) / "gt_segmentations"
    assert sorted(p.name[: -len(".nii.gz")] for p in gt.iterdir()) == cycle.annotated


def test_training_losses_are_finite_and_reported_per_epoch(cycle):
    for result in cycle.fold_results:
        assert len(result.losses) == EPOCHS
        assert all(math.isfinite(loss) for loss in result.losses)
        assert result.checkpoint.is_file()
        assert not (result.checkpoint.parent / "checkpoint_best.pth").exists()
    assert [(fold, epoch) for fold, epoch, _ in cycle.epoch_calls] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [loss for _, _, loss in cycle.epoch_calls] == cycle.fold_results[0].losses + cycle.fold_results[
        1
    ].losses


def test_checkpoints_load_with_weights_only(cycle):
    import torch

    checkpoint = torch.load(cycle.fold_results[0].checkpoint, map_location="cpu", weights_only=True)
    assert checkpoint["trainer_name"] == "nnActiveTrainer"
    assert checkpoint["inference_allowed_mirroring_axes"] is None


def test_pool_probabilities_have_case_shape_and_sum_to_one(cycle):
    for case, probabilities, _, spilled in cycle.predictions:
        image = toy.read(cycle.group.raw_dataset(EXPERIMENT) / "imagesTr" / f"{case}_0000.nii.gz")
        assert probabilities.shape == (2, 3, *image.shape)
        assert probabilities.dtype == np.float16 and not spilled
        np.testing.assert_allclose(probabilities.astype(np.float32).sum(axis=1), 1.0, atol=2e-3)
    assert not np.array_equal(cycle.predictions[0][1][0], cycle.predictions[0][1][1]), "members must differ"


def test_probabilities_spill_to_disk_and_are_removed(cycle):
    spilled = cycle.spilled
    assert spilled.spilled and spilled.probabilities.dtype == np.float32
    np.testing.assert_allclose(spilled.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert not cycle.spill_folder.exists()


def test_spilled_stack_equals_the_one_in_ram_and_maps_the_file(cycle, tmp_path):
    from nnactive_core.nnunet.prediction import EnsemblePredictor

    case = [(cycle.pool[1], cycle.images[cycle.pool[1]])]
    in_ram = next(EnsemblePredictor(cycle.models, [0, 1], device="cpu", dtype="float32").predict_cases(case))
    stream = EnsemblePredictor(
        cycle.models, [0, 1], device="cpu", dtype="float32", memory_limit_bytes=0, spill_dir=tmp_path
    ).predict_cases(case)
    spilled = next(stream)
    assert isinstance(spilled.probabilities, np.memmap) and spilled.probabilities.flags.writeable
    np.testing.assert_array_equal(spilled.probabilities, in_ram.probabilities)
    spilled.probabilities[0, 0, 0, 0, 0] = 7.0  # copy-on-write: the file keeps the prediction
    assert np.load(next(tmp_path.iterdir()) / "probabilities.npy")[0, 0, 0, 0, 0] != 7.0
    stream.close()
    assert list(tmp_path.iterdir()) == []


def test_spill_folder_is_removed_when_prediction_raises(cycle, tmp_path):
    from nnactive_core.nnunet.prediction import EnsemblePredictor

    predictor = EnsemblePredictor(
        cycle.models, [0, 1], device="cpu", dtype="float32", memory_limit_bytes=0, spill_dir=tmp_path
    )
    sliding_window = predictor.predictor.predict_sliding_window_return_logits
    calls = []

    def second_member_fails(data):
        calls.append(sorted(p.name for p in tmp_path.iterdir()))
        if len(calls) == 2:
            raise RuntimeError("out of memory")
        return sliding_window(data)

    predictor.predictor.predict_sliding_window_return_logits = second_member_fails
    with pytest.raises(RuntimeError, match="out of memory"):
        next(predictor.predict_cases([(cycle.pool[1], cycle.images[cycle.pool[1]])]))
    assert len(calls) == 2 and calls[1], "the spill folder existed when the second member failed"
    assert list(tmp_path.iterdir()) == []


def test_pool_probabilities_are_what_nnunet_exports(cycle):
    """Every member's probabilities equal nnU-Net's own export of that fold's logits (the
    segmentation half of the export is skipped, the probabilities must not change)."""
    import torch
    from nnunetv2.inference.export_prediction import (
        convert_predicted_logits_to_segmentation_with_correct_shape,
    )

    from nnactive_core.nnunet.prediction import EnsemblePredictor

    case, files = cycle.pool[0], cycle.images[cycle.pool[0]]
    for dtype in ("float32", "float16"):
        predictor = EnsemblePredictor(cycle.models, [0, 1], device="cpu", dtype=dtype)
        (prediction,) = predictor.predict_cases([(case, files)])
        m = predictor.models
        data, _, properties = predictor.preprocessor.run_case(
            [str(f) for f in files], None, m.plans_manager, m.configuration_manager, m.dataset_json
        )
        for member, parameters in enumerate(m.parameters):
            m.network.load_state_dict(parameters)
            logits = predictor.predictor.predict_sliding_window_return_logits(torch.from_numpy(data)).cpu()
            _, expected = convert_predicted_logits_to_segmentation_with_correct_shape(
                logits, m.plans_manager, m.configuration_manager, m.label_manager, properties, True
            )
            np.testing.assert_array_equal(prediction.probabilities[member], expected.astype(dtype))


def test_features_cover_the_case_on_a_low_resolution_grid(cycle):
    case, probabilities, features, _ = cycle.predictions[0]
    assert features.members == 2 and features.factor == (4, 4, 4)
    expected = tuple(math.ceil(s / 4) for s in probabilities.shape[2:])
    assert features.values.shape == (2 * 32, *expected)
    assert np.isfinite(features.values).all()


def test_validation_summary_in_nnunet_format(cycle):
    on_disk = json.loads(cycle.summary_file.read_text())
    assert set(on_disk) == {"foreground_mean", "mean", "metric_per_case"}
    assert set(on_disk["mean"]) == {"1", "2"}
    assert len(on_disk["metric_per_case"]) == 2
    dice = on_disk["foreground_mean"]["Dice"]
    assert 0.0 <= dice <= 1.0
    assert dice == pytest.approx(np.mean([on_disk["mean"][k]["Dice"] for k in ("1", "2")]))
    for record in on_disk["metric_per_case"]:
        predicted = toy.read(Path(record["prediction_file"]))
        assert predicted.shape == toy.read(Path(record["reference_file"])).shape
        assert Path(record["prediction_file"]).parent == cycle.prediction_folder


def test_ignore_region_has_no_effect_on_the_loss(cycle):
    """A real training batch and the trained fold-0 weights: network outputs changed only where the
    target is ``ignore`` leave the trainer's loss unchanged and get exactly zero gradient; changing an
    annotated target voxel does change it (so the check can fail)."""
    import torch

    from nnactive_core.nnunet.profiles import get_profile
    from nnactive_core.nnunet.training import build_trainer

    trainer = build_trainer(cycle.group, EXPERIMENT, 0, get_profile("tiny"), device=torch.device("cpu"))
    trainer.initialize()
    state = torch.load(cycle.fold_results[0].checkpoint, map_location="cpu", weights_only=True)
    trainer.network.load_state_dict(state["network_weights"])
    torch.manual_seed(0)
    np.random.seed(0)
    loader, _ = trainer.get_dataloaders()
    batch = next(loader)
    targets = batch["target"]
    ignored = [t == toy.IGNORE for t in targets]
    assert ignored[0].any() and (~ignored[0]).any(), "the batch must mix annotated and ignored voxels"

    with torch.no_grad():
        outputs = [o.detach() for o in trainer.network(batch["data"])]
    loss = trainer.loss(outputs, targets)
    noisy = [torch.where(mask, torch.randn_like(o) * 10, o) for o, mask in zip(outputs, ignored, strict=True)]
    assert torch.equal(trainer.loss(noisy, targets), loss)

    leaves = [o.clone().requires_grad_(True) for o in outputs]
    trainer.loss(leaves, targets).backward()
    gradient = leaves[0].grad
    assert gradient[ignored[0].expand_as(gradient)].abs().max() == 0
    assert gradient[~ignored[0].expand_as(gradient)].abs().max() > 0

    changed = [t.clone() for t in targets]
    annotated_voxel = tuple(torch.nonzero(~ignored[0])[0])
    changed[0][annotated_voxel] = (changed[0][annotated_voxel] + 1) % toy.IGNORE
    assert not torch.equal(trainer.loss(outputs, changed), loss)


def test_training_names_cases_missing_from_the_preprocessed_data(cycle, tmp_path):
    import shutil

    from nnactive_core.nnunet.environment import NnunetFolders
    from nnactive_core.nnunet.profiles import get_profile
    from nnactive_core.nnunet.training import train_fold

    folders = NnunetFolders.under(tmp_path)
    target = folders.preprocessed_dataset(EXPERIMENT)
    shutil.copytree(cycle.group.preprocessed_dataset(EXPERIMENT), target)
    splits = json.loads((target / "splits_final.json").read_text())
    splits[0]["train"].append("case_missing")
    (target / "splits_final.json").write_text(json.dumps(splits))
    with pytest.raises(FileNotFoundError, match="not preprocessed: case_missing"):
        train_fold(folders, EXPERIMENT, 0, get_profile("tiny"), device="cpu")
    with pytest.raises(ValueError, match="fold 5 does not exist"):
        train_fold(folders, EXPERIMENT, 5, get_profile("tiny"), device="cpu")


def test_repreprocessing_one_case_updates_only_that_case(cycle, tmp_path):
    import shutil

    import blosc2
    import SimpleITK as sitk

    from nnactive_core.nnunet.environment import NnunetFolders
    from nnactive_core.nnunet.preprocessing import preprocess_cases, preprocessed_cases

    folders = NnunetFolders.under(tmp_path)
    shutil.copytree(cycle.group.raw_dataset(EXPERIMENT), folders.raw_dataset(EXPERIMENT), symlinks=True)
    shutil.copytree(cycle.group.preprocessed_dataset(EXPERIMENT), folders.preprocessed_dataset(EXPERIMENT))
    data = folders.preprocessed_dataset(EXPERIMENT) / "nnUNetPlans_3d_fullres"
    changed, other = cycle.annotated[0], cycle.annotated[1]
    before = {p.name: p.stat().st_mtime_ns for p in data.iterdir()}

    label_file = folders.raw_dataset(EXPERIMENT) / "labelsTr" / f"{changed}.nii.gz"
    full = toy.read(cycle.base.raw_dataset(BASE) / "labelsTr" / f"{changed}.nii.gz")
    image = sitk.GetImageFromArray(full)  # the whole case annotated now
    image.CopyInformation(sitk.ReadImage(str(label_file)))
    sitk.WriteImage(image, str(label_file))
    assert preprocess_cases(folders, EXPERIMENT, [changed], num_processes=1) == [changed]

    after = {p.name: p.stat().st_mtime_ns for p in data.iterdir()}
    assert set(after) == set(before), "no leftovers of the staging folder"
    assert after[f"{other}_seg.b2nd"] == before[f"{other}_seg.b2nd"]
    assert after[f"{changed}_seg.b2nd"] != before[f"{changed}_seg.b2nd"]
    assert preprocessed_cases(folders, EXPERIMENT) == set(cycle.annotated)
    seg = blosc2.open(str(data / f"{changed}_seg.b2nd"))[:]
    assert (seg != toy.IGNORE).all()
