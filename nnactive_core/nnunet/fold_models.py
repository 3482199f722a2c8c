"""Trained fold models: checkpoints read safely, one network built for all folds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs
import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.label_handling.label_handling import LabelManager, determine_num_input_channels
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager

from nnactive_core.io import read_json

CHECKPOINT = "checkpoint_final.pth"
SNAPSHOT = "checkpoint_snapshot_{index}.pth"
"""Snapshot ``index`` (from 0) of a snapshot-ensemble training; its last member is :data:`CHECKPOINT`."""


def member_checkpoints(folds: Sequence[int], snapshots: int = 1, checkpoint_name: str = CHECKPOINT):
    """``fold_k/<file>`` of every ensemble member, fold by fold: each fold's ``snapshots - 1`` snapshot
    checkpoints in training order, then its final one."""
    names = [SNAPSHOT.format(index=index) for index in range(snapshots - 1)] + [checkpoint_name]
    return [(fold, f"fold_{fold}/{name}") for fold in folds for name in names]


@attrs.define(kw_only=True)
class FoldModels:
    """What prediction needs from a trained model folder (``plans.json``, ``dataset.json``,
    ``fold_k/<checkpoint>``): the plans, the label layout, one network and each fold's weights."""

    plans_manager: PlansManager
    configuration_manager: ConfigurationManager
    label_manager: LabelManager
    dataset_json: dict
    network: torch.nn.Module
    parameters: list[dict]
    folds: tuple[int, ...]
    mirror_axes: tuple[int, ...] | None
    trainer_name: str

    @property
    def label_values(self) -> tuple[int, ...]:
        """Label value of each probability channel (``ignore`` has no channel)."""
        return tuple(self.label_manager.all_labels)


def load_fold_models(
    model_dir: Path,
    folds: Sequence[int],
    *,
    device: torch.device,
    checkpoint_name: str = CHECKPOINT,
    snapshots: int = 1,
) -> FoldModels:
    """Read ``folds`` of ``model_dir`` with ``torch.load(weights_only=True)`` and build the network once
    (on ``device``, in eval mode, without deep supervision). With ``snapshots > 1`` each fold gives that
    many members (:func:`member_checkpoints`)."""
    model_dir = Path(model_dir)
    if not folds:
        raise ValueError("at least one fold is needed for prediction")
    for name in ("plans.json", "dataset.json"):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir / name} not found: train a fold first")
    plans_manager = PlansManager(read_json(model_dir / "plans.json", expect=dict))
    dataset_json = read_json(model_dir / "dataset.json", expect=dict)

    parameters, mirror_axes, configuration, trainer_name = [], None, None, ""
    for fold, member in member_checkpoints(folds, snapshots, checkpoint_name):
        path = model_dir / member
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: fold {fold} is not trained")
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        parameters.append(checkpoint["network_weights"])
        if configuration is None:
            configuration = checkpoint["init_args"]["configuration"]
            trainer_name = checkpoint["trainer_name"]
            axes = checkpoint.get("inference_allowed_mirroring_axes")
            mirror_axes = tuple(axes) if axes is not None else None

    configuration_manager = plans_manager.get_configuration(configuration)
    label_manager = plans_manager.get_label_manager(dataset_json)
    # the trainer builds upstream's architecture, so the network comes straight from the plans (and
    # prediction does not import the trainer)
    network = get_network_from_plans(
        configuration_manager.network_arch_class_name,
        configuration_manager.network_arch_init_kwargs,
        configuration_manager.network_arch_init_kwargs_req_import,
        determine_num_input_channels(plans_manager, configuration_manager, dataset_json),
        label_manager.num_segmentation_heads,
        allow_init=True,
        deep_supervision=False,
    )
    network.load_state_dict(parameters[0])
    network.to(device).eval()
    return FoldModels(
        plans_manager=plans_manager,
        configuration_manager=configuration_manager,
        label_manager=label_manager,
        dataset_json=dataset_json,
        network=network,
        parameters=parameters,
        folds=tuple(folds),
        mirror_axes=mirror_axes,
        trainer_name=trainer_name,
    )
