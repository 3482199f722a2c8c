"""Stand-ins for the nnU-Net side of a loop (:mod:`nnactive_core.experiment.nnunet_steps`), so the loop's
state machine, files and resumption can be tested in a second: training writes a marker checkpoint,
validation a summary whose Dice grows with the budget, and the pool's "ensemble" gives seeded
probabilities per case. Everything else (oracle, patch engine, strategies, splits, costs) is real."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import attrs
import numpy as np

from nnactive_core.experiment import nnunet_steps
from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.io import atomic_write_json
from nnactive_core.testing.synthetic import make_probabilities

SMALL_DEMO = {"n_cases": 6, "n_validation": 1, "size": 16}


def small_config(**changes) -> ExperimentConfig:
    fields = dict(
        dataset="Dataset900_Demo",
        dataset_adapter="demo",
        dataset_options=SMALL_DEMO,
        patch_size=(4, 4, 4),
        query_size=10,
        query_steps=3,
        strategy="random",
        seed=3,
        folds=2,
        training_profile="tiny",
        val_mirroring=False,
    )
    fields.update(changes)
    return ExperimentConfig(**fields)


@attrs.define
class FakeNnunetSteps:
    """Records what the runner asked for; ``fail`` maps a call name to how often it raises first."""

    root: Path
    calls: list = attrs.field(factory=list)
    fail: dict = attrs.field(factory=dict)

    def _maybe_fail(self, name: str) -> None:
        if self.fail.get(name, 0) > 0:
            self.fail[name] -= 1
            raise RuntimeError(f"injected failure in {name}")

    def model_folder(self, layout) -> Path:
        return layout.trainings / "FakeTrainer__nnUNetPlans__3d_fullres"

    def prepare_plans(self, layout, config, dataset, reporter) -> None:
        self.calls.append(("plans",))
        layout.preprocessed.mkdir(parents=True, exist_ok=True)

    def preprocess(self, layout, dataset, cases) -> list[str]:
        self.calls.append(("preprocess", tuple(cases)))
        return list(cases)

    def train_fold(self, layout, config, loop, fold, device, on_epoch) -> float:
        self.calls.append(("train", loop, fold))
        splits = json.loads((layout.preprocessed / "splits_final.json").read_text())
        assert len(splits) == config.folds
        for epoch in range(2):
            on_epoch(epoch, 2, 1.0 - 0.25 * epoch)
        self._maybe_fail(f"train:{loop}:{fold}")
        folder = self.model_folder(layout) / f"fold_{fold}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "checkpoint_final.pth").write_text(f"loop {loop} fold {fold}")
        return 0.5

    def validate(self, layout, config, dataset, loop, device, advance) -> dict:
        self.calls.append(("validate", loop))
        annotated = sum(len(json.loads(p.read_text())["patches"]) for p in layout.raw.glob("loop_*.json"))
        per_class = {
            str(value): {"Dice": annotated / 100 / value} for value in dataset.labels.values() if value
        }
        summary = {"foreground_mean": {"Dice": annotated / 100}, "mean": per_class, "metric_per_case": []}
        atomic_write_json(layout.summary_file(loop), summary)
        return summary

    def pool_inputs(self, layout, config, dataset, device, advance, requires_features=False, cases=None):
        from nnactive_core.query.engine import CaseInput

        self.calls.append(("predict",) if cases is None else ("predict", *cases))
        classes = len(dataset.labels)
        for case in dataset.pool_cases() if cases is None else cases:
            shape = dataset.shape(case)
            seed = zlib.crc32(case.encode())
            yield CaseInput(
                file=case + dataset.file_ending,
                shape=shape,
                load_probabilities=lambda shape=shape, seed=seed: make_probabilities(
                    members=2, classes=classes, shape=shape, seed=seed, dtype="float16"
                ),
            )

    def install(self, monkeypatch) -> FakeNnunetSteps:
        for name in ("model_folder", "prepare_plans", "preprocess", "train_fold", "validate", "pool_inputs"):
            monkeypatch.setattr(nnunet_steps, name, getattr(self, name))
        monkeypatch.setattr(nnunet_steps, "device_name", lambda config: "cpu")
        return self


def loop_file_bytes(layout) -> dict[str, bytes]:
    """Every loop file by name: what a resumed run must reproduce byte for byte."""
    return {p.name: p.read_bytes() for p in sorted(layout.raw.glob("loop_*.json"))}


def labels_as_arrays(layout) -> dict[str, np.ndarray]:
    import SimpleITK as sitk

    return {p.name: sitk.GetArrayFromImage(sitk.ReadImage(str(p))) for p in sorted(layout.labels.iterdir())}


@attrs.define
class VesselNeverPredicted(FakeNnunetSteps):
    """Validation in which the vessel (label 3) is never predicted and the organ's Dice falls in the
    last loop."""

    def validate(self, layout, config, dataset, loop, device, advance) -> dict:
        self.calls.append(("validate", loop))
        organ = (0.5, 0.6, 0.4)[loop]
        metrics = {
            "1": {"Dice": organ, "n_pred": 10, "n_ref": 10},
            "3": {"Dice": 0.0, "n_pred": 0, "n_ref": 5},
        }
        summary = {
            "foreground_mean": {"Dice": organ / 2},
            "mean": {key: {"Dice": value["Dice"]} for key, value in metrics.items()},
            "metric_per_case": [{"metrics": metrics}],
        }
        atomic_write_json(layout.summary_file(loop), summary)
        return summary
