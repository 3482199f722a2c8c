"""The partial-label nnU-Net trainer.

:class:`nnActiveTrainer` is a plain ``nnUNetTrainer`` subclass that the adapter instantiates itself (never
through nnU-Net's name lookup) and configures from a :class:`~nnactive_core.nnunet.profiles.TrainingProfile`
after construction, so one class serves every setting. Differences from upstream nnU-Net 2.8.1:

- loss: CE + soft Dice (weights 1), Dice without smoothing and without background (region datasets:
  BCE + Dice with background, also unsmoothed); voxels carrying the ``ignore`` label contribute nothing
  (upstream's loss mask and ``ignore_index``, kept as is);
- sampling: samples that are not forced to a foreground class pick an annotated voxel and shift it by a
  random offset per axis, so it lies anywhere in the patch rather than at its centre
  (:class:`OffsetSamplingDataLoader`); the last ~33% of a batch is foreground-forced as upstream;
- no ``checkpoint_best.pth``; ``checkpoint_final.pth`` always, ``checkpoint_latest.pth`` only every
  ``profile.save_every`` epochs; ``progress.png`` only with ``profile.plot_progress``;
- a per-epoch callback ``on_epoch(epoch, train_loss)``; console output only when ``verbose``;
- checkpoints hold only tensors and plain Python values, so ``torch.load(weights_only=True)`` reads them;
- options (off by default, where the training is upstream's): start from another checkpoint's network
  weights (a warm start; optimizer and momentum start fresh), a
  :class:`~nnactive_core.nnunet.schedules.LearningRateSchedule` instead of upstream's poly decay, and
  snapshot checkpoints (:data:`~nnactive_core.nnunet.fold_models.SNAPSHOT`) at the ends of its cycles.

Checkpoints name the trainer ``nnActiveTrainer``; nnU-Net's own CLI loads them where its trainer lookup
finds this class (``nnUNet_extTrainer``). The architecture is upstream's, so inference needs nothing
else from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from batchgenerators.dataloading.nondet_multi_threaded_augmenter import NonDetMultiThreadedAugmenter
from batchgenerators.dataloading.single_threaded_augmenter import SingleThreadedAugmenter
from nnunetv2.training.dataloading.data_loader import nnUNetDataLoader
from nnunetv2.training.dataloading.nnunet_dataset import infer_dataset_class
from nnunetv2.training.loss.compound_losses import DC_and_BCE_loss, DC_and_CE_loss
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnactive_core.nnunet.checkpoints import save_checkpoint
from nnactive_core.nnunet.environment import augmentation_workers
from nnactive_core.nnunet.fold_models import SNAPSHOT
from nnactive_core.nnunet.profiles import TrainingProfile
from nnactive_core.nnunet.schedules import LearningRateSchedule, ScheduledLR

EpochCallback = Callable[[int, float], None]


class OffsetSamplingDataLoader(nnUNetDataLoader):
    """nnU-Net's loader, except that a sample centred on an annotated voxel ``v`` (datasets with an
    ignore label, sample not foreground-forced) is centred on ``c = v + s`` with ``s_d`` drawn uniformly
    from ``[-min(v_d, P_d - P_d // 2 - 1), min(D_d - 1 - v_d, P_d // 2)]`` (P: network patch, D: case
    shape): every position of ``v`` in the patch is equally likely and the centre stays inside the case.

    This is the established random-offset sampling with its ends made exact: the published range
    ``[-min(v_d, P_d / 2), min(D_d - v_d, P_d / 2))`` can place ``v`` one voxel outside the patch.
    Without ``offset`` samples are placed as upstream.

    With ``inside`` (an improvement, off in the established training) the network patch also stays
    inside the case on every axis where the case is at least as long as the patch: upstream (and the
    offset above) centre patches on a voxel, so near a case's border up to half of the patch is padding,
    whose label becomes annotated background (about a quarter of every patch for cases barely larger
    than the patch). Then ``v`` takes every position that keeps the patch inside with equal probability,
    and foreground-forced patches are shifted inside by the least amount (their voxel stays in them)."""

    def __init__(self, *args, offset: bool = True, inside: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.offset = offset
        self.inside = inside

    def get_bbox(self, data_shape, force_fg, class_locations, overwrite_class=None, verbose=False):
        offset = self.offset and not force_fg and self.has_ignore and class_locations is not None
        annotated = class_locations.get(self.annotated_classes_key, []) if offset else []
        if len(annotated) == 0:
            bbox_lbs, bbox_ubs = super().get_bbox(
                data_shape, force_fg, class_locations, overwrite_class, verbose
            )
            return self._shifted_inside(data_shape, bbox_lbs) if self.inside else (bbox_lbs, bbox_ubs)

        dim = len(data_shape)
        voxel = [int(v) for v in annotated[np.random.choice(len(annotated))][1:]]
        if self.inside:
            return self._bbox_of([self._inside_start(voxel[d], data_shape[d], d) for d in range(dim)])
        need_to_pad = self.need_to_pad.copy()
        for d in range(dim):
            if need_to_pad[d] + data_shape[d] < self.patch_size[d]:
                need_to_pad[d] = self.patch_size[d] - data_shape[d]
        lower_bounds = [-need_to_pad[d] // 2 for d in range(dim)]
        centre = []
        for d in range(dim):
            size = int(self.final_patch_size[d])
            low = -min(voxel[d], size - size // 2 - 1)
            high = min(int(data_shape[d]) - 1 - voxel[d], size // 2)
            centre.append(voxel[d] + np.random.randint(low, high + 1))
        bbox_lbs = [max(lower_bounds[d], centre[d] - self.patch_size[d] // 2) for d in range(dim)]
        bbox_ubs = [bbox_lbs[d] + self.patch_size[d] for d in range(dim)]
        return bbox_lbs, bbox_ubs

    def _inside_start(self, voxel: int, length: int, axis: int) -> int:
        """Start of the network patch: uniform over the starts whose patch holds ``voxel`` and lies inside
        ``[0, length)`` (where the case is shorter than the patch: over those that cover the case)."""
        size = int(self.final_patch_size[axis])
        if length >= size:
            return int(np.random.randint(max(0, voxel - size + 1), min(voxel, length - size) + 1))
        return int(np.random.randint(length - size, 1))

    def _shifted_inside(self, data_shape, bbox_lbs):
        starts = []
        for d, lower in enumerate(bbox_lbs):
            size, length = int(self.final_patch_size[d]), int(data_shape[d])
            start = lower + self.patch_size[d] // 2 - size // 2
            # inside the case, or (case shorter than the patch) covering all of it
            starts.append(min(max(start, min(0, length - size)), max(0, length - size)))
        return self._bbox_of(starts)

    def _bbox_of(self, network_starts):
        """The loader's (augmentation-sized) box whose centre crop is the network patch at ``network_starts``
        (nnU-Net's spatial transform crops around ``floor(box / 2)``)."""
        bbox_lbs = [
            int(start) + int(self.final_patch_size[d]) // 2 - int(self.patch_size[d]) // 2
            for d, start in enumerate(network_starts)
        ]
        return bbox_lbs, [lower + int(self.patch_size[d]) for d, lower in enumerate(bbox_lbs)]


class nnActiveTrainer(nnUNetTrainer):  # noqa: N801 - nnU-Net names trainers in this style
    """Partial-label trainer; call :meth:`configure` before training."""

    def __init__(
        self,
        plans: dict,
        configuration: str,
        fold: int,
        dataset_json: dict,
        device: torch.device = torch.device("cuda"),  # noqa: B008 - nnU-Net's signature, recorded by inspect
    ):
        self.verbose = False
        super().__init__(plans, configuration, fold, dataset_json, device)
        if device.type == "cuda" and device.index is not None:
            # upstream pins non-distributed training to cuda:0
            self.device = device
        self.offset_sampling = True
        self.patch_inside = False
        self.mirroring = True
        self.plot_progress = True
        self.epoch_callback: EpochCallback | None = None
        self.save_every = 10**9
        self.schedule: LearningRateSchedule | None = None
        self.start_weights: Path | None = None
        self.snapshot_epochs: tuple[int, ...] = ()

    def configure(
        self,
        profile: TrainingProfile,
        *,
        on_epoch: EpochCallback | None = None,
        verbose: bool = False,
        schedule: LearningRateSchedule | None = None,
        start_weights: Path | None = None,
        snapshots: int = 1,
    ):
        """Apply a training profile (run before :meth:`initialize`; network fields live in the plans).

        ``schedule`` replaces the profile's epochs, learning rate and upstream's poly decay;
        ``start_weights`` is a checkpoint whose network weights the training starts from;
        ``snapshots > 1`` saves ``checkpoint_snapshot_<i>.pth`` at the ends of the schedule's last
        cycles but one (the last member is ``checkpoint_final.pth``)."""
        if self.was_initialized:
            raise RuntimeError("configure the trainer before it is initialized")
        self.num_epochs = profile.epochs
        self.num_iterations_per_epoch = profile.iterations_per_epoch
        self.num_val_iterations_per_epoch = profile.val_iterations_per_epoch
        self.initial_lr = profile.learning_rate
        self.oversample_foreground_percent = profile.oversample_foreground
        self.offset_sampling = profile.offset_sampling
        self.patch_inside = profile.patch_inside
        self.mirroring = profile.mirroring
        self.plot_progress = profile.plot_progress
        self.save_every = profile.save_every if profile.save_every is not None else 10**9
        self.epoch_callback = on_epoch
        self.verbose = verbose
        self.schedule = schedule
        if schedule is not None:
            self.num_epochs = schedule.epochs
            self.initial_lr = schedule.initial
        if snapshots > 1:
            ends = schedule.cycle_ends if schedule is not None else ()
            if len(ends) < snapshots:
                raise ValueError(f"{snapshots} snapshots need a schedule of at least {snapshots} cycles")
            self.snapshot_epochs = ends[-snapshots:-1]
        self.start_weights = start_weights

    def initialize(self):
        first = not self.was_initialized
        super().initialize()
        if first and self.start_weights is not None:
            checkpoint = torch.load(self.start_weights, map_location=self.device, weights_only=True)
            network = self.network.module if self.is_ddp else self.network
            getattr(network, "_orig_mod", network).load_state_dict(checkpoint["network_weights"])

    def configure_optimizers(self):
        optimizer, scheduler = super().configure_optimizers()
        if self.schedule is None:
            return optimizer, scheduler
        return optimizer, ScheduledLR(optimizer, self.schedule)

    def print_to_log_file(self, *args, also_print_to_console=True, add_timestamp=True):
        super().print_to_log_file(
            *args, also_print_to_console=also_print_to_console and self.verbose, add_timestamp=add_timestamp
        )

    def _build_loss(self):
        dice = {"batch_dice": self.configuration_manager.batch_dice, "smooth": 0.0, "ddp": self.is_ddp}
        if self.label_manager.has_regions:
            loss = DC_and_BCE_loss(
                {},
                {**dice, "do_bg": True},
                use_ignore_label=self.label_manager.ignore_label is not None,
                dice_class=MemoryEfficientSoftDiceLoss,
            )
        else:
            loss = DC_and_CE_loss(
                {**dice, "do_bg": False},
                {},
                weight_ce=1,
                weight_dice=1,
                ignore_label=self.label_manager.ignore_label,
                dice_class=MemoryEfficientSoftDiceLoss,
            )
        if self.enable_deep_supervision:
            # upstream's weights: halving per resolution, the lowest output unused
            weights = np.array([1 / (2**i) for i in range(len(self._get_deep_supervision_scales()))])
            weights[-1] = 1e-6 if self.is_ddp else 0
            loss = DeepSupervisionWrapper(loss, weights / weights.sum())
        return loss

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):  # noqa: N802 - upstream name
        rotation, dummy_2d, initial_patch_size, mirror_axes = (
            super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        )
        if not self.mirroring:
            mirror_axes = None
            self.inference_allowed_mirroring_axes = None
        return rotation, dummy_2d, initial_patch_size, mirror_axes

    def get_dataloaders(self):
        if self.dataset_class is None:
            self.dataset_class = infer_dataset_class(self.preprocessed_dataset_folder)
        patch_size = self.configuration_manager.patch_size
        ds_scales = self._get_deep_supervision_scales()
        rotation, dummy_2d, initial_patch_size, mirror_axes = (
            self.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        )
        labels = self.label_manager
        regions = labels.foreground_regions if labels.has_regions else None
        train_transforms = self.get_training_transforms(
            patch_size,
            rotation,
            ds_scales,
            mirror_axes,
            dummy_2d,
            use_mask_for_norm=self.configuration_manager.use_mask_for_norm,
            is_cascaded=self.is_cascaded,
            foreground_labels=labels.foreground_labels,
            regions=regions,
            ignore_label=labels.ignore_label,
        )
        val_transforms = self.get_validation_transforms(
            ds_scales,
            is_cascaded=self.is_cascaded,
            foreground_labels=labels.foreground_labels,
            regions=regions,
            ignore_label=labels.ignore_label,
        )
        dataset_tr, dataset_val = self.get_tr_and_val_datasets()
        if self.offset_sampling or self.patch_inside:
            loader_class = partial(
                OffsetSamplingDataLoader, offset=self.offset_sampling, inside=self.patch_inside
            )
        else:
            loader_class = nnUNetDataLoader
        common = {
            "label_manager": labels,
            "oversample_foreground_percent": self.oversample_foreground_percent,
            "sampling_probabilities": None,
            "pad_sides": None,
            "probabilistic_oversampling": self.probabilistic_oversampling,
        }
        dl_tr = loader_class(
            dataset_tr, self.batch_size, initial_patch_size, patch_size, transforms=train_transforms, **common
        )
        dl_val = loader_class(
            dataset_val, self.batch_size, patch_size, patch_size, transforms=val_transforms, **common
        )

        workers = augmentation_workers(self.device)
        if workers == 0:
            gen_train, gen_val = SingleThreadedAugmenter(dl_tr, None), SingleThreadedAugmenter(dl_val, None)
        else:
            pin = self.device.type == "cuda"
            gen_train = NonDetMultiThreadedAugmenter(
                dl_tr, None, workers, max(6, workers // 2), None, pin_memory=pin, wait_time=0.002
            )
            gen_val = NonDetMultiThreadedAugmenter(
                dl_val,
                None,
                max(1, workers // 2),
                max(3, workers // 4),
                None,
                pin_memory=pin,
                wait_time=0.002,
            )
        next(gen_train)
        next(gen_val)
        return gen_train, gen_val

    def plot_network_architecture(self):
        """Skipped: upstream tries an optional package (hiddenlayer) that is not a dependency."""

    def on_validation_epoch_end(self, val_outputs):
        if val_outputs:
            return super().on_validation_epoch_end(val_outputs)
        n_classes = len(self.label_manager.foreground_labels)
        self.logger.log("mean_fg_dice", float("nan"), self.current_epoch)
        self.logger.log("dice_per_class_or_region", [float("nan")] * n_classes, self.current_epoch)
        self.logger.log("val_losses", float("nan"), self.current_epoch)

    def on_epoch_end(self):
        epoch = self.current_epoch
        self.logger.log("epoch_end_timestamps", time.time(), epoch)
        train_loss = float(self.logger.get_value("train_losses", step=-1))
        seconds = self.logger.get_value("epoch_end_timestamps", -1) - self.logger.get_value(
            "epoch_start_timestamps", -1
        )
        self.print_to_log_file("train_loss", np.round(train_loss, decimals=4))
        self.print_to_log_file("val_loss", np.round(self.logger.get_value("val_losses", step=-1), decimals=4))
        self.print_to_log_file(
            "Pseudo dice",
            [np.round(i, decimals=4) for i in self.logger.get_value("dice_per_class_or_region", -1)],
        )
        self.print_to_log_file(f"Epoch time: {np.round(seconds, decimals=2)} s")
        if (epoch + 1) % self.save_every == 0 and epoch != self.num_epochs - 1:
            self.save_checkpoint(f"{self.output_folder}/checkpoint_latest.pth")
        if epoch in self.snapshot_epochs:
            index = self.snapshot_epochs.index(epoch)
            self.save_checkpoint(f"{self.output_folder}/{SNAPSHOT.format(index=index)}")
        if self.plot_progress and self.local_rank == 0:
            self.logger.plot_progress_png(self.output_folder)
        if self.epoch_callback is not None:
            self.epoch_callback(epoch, train_loss)
        self.current_epoch += 1

    def save_checkpoint(self, filename: str) -> None:
        if self.local_rank != 0 or self.disable_checkpointing:
            return
        network = self.network.module if self.is_ddp else self.network
        network = getattr(network, "_orig_mod", network)
        init_args = dict(self.my_init_kwargs)
        init_args["device"] = str(init_args["device"])
        checkpoint = {
            "network_weights": network.state_dict(),
            "optimizer_state": self.optimizer.state_dict(),
            "grad_scaler_state": self.grad_scaler.state_dict() if self.grad_scaler is not None else None,
            "logging": _plain(self.logger.get_checkpoint()),
            "_best_ema": _plain(self._best_ema),
            "current_epoch": self.current_epoch + 1,
            "init_args": _plain(init_args),
            "trainer_name": self.__class__.__name__,
            "inference_allowed_mirroring_axes": _plain(self.inference_allowed_mirroring_axes),
        }
        save_checkpoint(checkpoint, filename)


def _plain(value):
    """numpy scalars and arrays -> Python values, recursively (``weights_only`` loading rejects numpy)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
