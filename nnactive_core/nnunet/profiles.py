"""Training profiles: how long and how big the per-loop nnU-Net models are.

A profile is plain data. The partial-label trainer reads it after construction (epochs, iterations,
learning rate, sampling, mirroring, checkpointing) and :func:`nnactive_core.nnunet.planning.shrink_plans`
applies its network fields (patch size, batch size, features, stages) to the nnU-Net plans. ``None``
keeps what nnU-Net planned.

>>> get_profile("tiny", epochs=2).epochs
2
"""

from __future__ import annotations

import attrs


def _optional_triple(value) -> tuple[int, int, int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return (value,) * 3
    values = tuple(int(v) for v in value)
    if len(values) != 3:
        raise ValueError(f"patch_size needs 3 values (z, y, x), got {value!r}")
    return values  # type: ignore[return-value]


def _positive(instance, attribute, value) -> None:
    if value is not None and value <= 0:
        raise ValueError(f"profile field {attribute.name} must be positive, got {value!r}")


def _non_negative(instance, attribute, value) -> None:
    if value < 0:
        raise ValueError(f"profile field {attribute.name} must not be negative, got {value!r}")


def _fraction(instance, attribute, value) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"profile field {attribute.name} must lie in [0, 1], got {value!r}")


def _patch_positive(instance, attribute, value) -> None:
    if value is not None and min(value) <= 0:
        raise ValueError(f"profile field patch_size must be positive, got {value!r}")


@attrs.frozen(kw_only=True)
class TrainingProfile:
    """Settings of the nnU-Net model trained per fold and loop."""

    epochs: int = attrs.field(validator=_positive)
    iterations_per_epoch: int = attrs.field(validator=_positive)
    val_iterations_per_epoch: int = attrs.field(default=50, validator=_non_negative)
    """Pseudo-Dice batches per epoch on the fold's own validation cases (0: skip them)."""
    batch_size: int | None = attrs.field(default=None, validator=_positive)
    patch_size: tuple[int, int, int] | None = attrs.field(
        default=None, converter=_optional_triple, validator=_patch_positive
    )
    """Network patch in voxels (z, y, x); nnU-Net may round it up to fit the pooling."""
    base_features: int | None = attrs.field(default=None, validator=_positive)
    max_features: int | None = attrs.field(default=None, validator=_positive)
    n_stages: int | None = attrs.field(default=None, validator=_positive)
    """Upper bound on the encoder stages (None: as many as the patch allows)."""
    oversample_foreground: float = attrs.field(default=0.33, validator=_fraction)
    """Share of each batch (the last samples) centred on a labelled class voxel."""
    offset_sampling: bool = True
    """Place the other samples' annotated voxel anywhere in the patch rather than at its centre."""
    patch_inside: bool = False
    """Keep every network patch inside its case where the case is large enough (established: off, so
    patches near a border are up to half padding, labelled background)."""
    mirroring: bool = True
    """Mirror augmentation in training and mirror axes stored for test-time augmentation."""
    val_mirroring: bool = True
    query_mirroring: bool = False
    """The experiment's defaults of test-time mirroring on the held-out set and the pool; they apply
    only where ``mirroring`` stores mirror axes (an explicit experiment setting wins)."""
    learning_rate: float = attrs.field(default=1e-2, validator=_positive)
    save_every: int | None = attrs.field(default=None, validator=_positive)
    """Write ``checkpoint_latest.pth`` every N epochs (None: only ``checkpoint_final.pth``)."""
    plot_progress: bool = False
    """nnU-Net's ``progress.png`` after every epoch (seconds per epoch on a CPU)."""
    warm_epochs: int | None = attrs.field(default=None, validator=_positive)
    """Epochs of a warm-started fold (experiment option ``warm_start``; None: a third of ``epochs``,
    at least 2). Loop 0 always trains ``epochs`` from scratch."""
    warm_up_epochs: int = attrs.field(default=1, validator=_non_negative)
    """Epochs of linear learning-rate warm-up at the start of a warm-started fold."""
    warm_learning_rate: float | None = attrs.field(default=None, validator=_positive)
    """Initial learning rate of a warm-started fold (None: ``learning_rate``)."""
    snapshots: int = attrs.field(default=3, validator=_positive)
    """Members of a snapshot ensemble (experiment option ``ensemble = "snapshots"``): the weights at the
    ends of the last ``snapshots`` learning-rate cycles of one training."""

    @property
    def warm_training_epochs(self) -> int:
        return self.warm_epochs if self.warm_epochs is not None else max(2, self.epochs // 3)


PROFILES: dict[str, TrainingProfile] = {
    "default": TrainingProfile(
        epochs=200,
        iterations_per_epoch=250,
        val_iterations_per_epoch=50,
        plot_progress=True,
    ),
    "tiny": TrainingProfile(
        epochs=12,
        iterations_per_epoch=16,
        val_iterations_per_epoch=2,
        batch_size=2,
        patch_size=(32, 32, 32),
        base_features=8,
        max_features=64,
        mirroring=False,
        val_mirroring=False,
    ),
    "small": TrainingProfile(
        epochs=80,
        iterations_per_epoch=25,
        val_iterations_per_epoch=0,
        batch_size=2,
        patch_size=(32, 32, 32),
        base_features=8,
        max_features=64,
        mirroring=False,
        patch_inside=True,
    ),
}
"""``default``: the established nnActive training (200 epochs x 250 iterations, plan batch and patch).
``tiny``: small enough for CPU tests and the demo (32^3 patches, batch 2, 8 base features).
``small``: the tiny network trained ten times longer (2000 iterations; a warm-started loop 26 epochs),
patches kept inside their case and no per-epoch pseudo Dice: what real anatomy needs on a CPU. With
1000 iterations (its first setting) the brain-atlas study stayed near the all-cortex reference
(docs/studies/atlas-small.md)."""


def get_profile(name: str, **overrides) -> TrainingProfile:
    """The profile ``name`` with some fields replaced; errors name the unknown profile or field."""
    if name not in PROFILES:
        raise ValueError(f"unknown training profile {name!r}; known: {', '.join(sorted(PROFILES))}")
    fields = {field.name for field in attrs.fields(TrainingProfile)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"unknown training profile field(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}"
        )
    return attrs.evolve(PROFILES[name], **overrides)
