"""Learning-rate schedules of warm-started and snapshot trainings (plain maths, no torch).

nnU-Net trains with poly decay, ``lr(e) = lr0 * (1 - e / E) ** 0.9`` over ``E`` epochs. Two options
change it, and only they (a from-scratch fold ensemble keeps nnU-Net's own scheduler):

- a warm-started fold starts from trained weights with a fresh SGD momentum buffer; ``warmup`` epochs
  ramp the rate linearly (``lr0 * (e + 1) / (warmup + 1)``) so the first large steps do not throw the
  weights out of the basin they start in, then poly decay runs over the remaining epochs;
- snapshot ensembles (Huang et al. 2017, "Snapshot ensembles: train 1, get M for free") split the
  epochs after the warm-up into ``cycles`` poly-decay cycles that each restart at ``lr0``; the weights
  at the end of each cycle (a low rate, a local minimum) are the ensemble's members. The remainder of
  the division goes to the first cycle, so the last cycles, whose ends are the members, are equal.

>>> schedule = LearningRateSchedule(initial=0.01, epochs=7, warmup=1, cycles=2)
>>> schedule.cycle_ends
(3, 6)
>>> [round(schedule.rate(e), 4) for e in range(7)]
[0.005, 0.01, 0.0069, 0.0037, 0.01, 0.0069, 0.0037]
"""

from __future__ import annotations

import attrs

from nnactive_core.nnunet.profiles import TrainingProfile

POLY_EXPONENT = 0.9
"""nnU-Net's exponent."""


def _positive(instance, attribute, value) -> None:
    if value <= 0:
        raise ValueError(f"learning-rate schedule: {attribute.name} must be positive, got {value!r}")


def _non_negative(instance, attribute, value) -> None:
    if value < 0:
        raise ValueError(f"learning-rate schedule: {attribute.name} must not be negative, got {value!r}")


@attrs.frozen(kw_only=True)
class LearningRateSchedule:
    """Linear warm-up for ``warmup`` epochs, then ``cycles`` poly-decay cycles over the other epochs."""

    initial: float = attrs.field(validator=_positive)
    epochs: int = attrs.field(validator=_positive)
    warmup: int = attrs.field(default=0, validator=_non_negative)
    cycles: int = attrs.field(default=1, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.epochs - self.warmup < self.cycles:
            raise ValueError(
                f"learning-rate schedule: {self.epochs} epochs cannot hold {self.warmup} warm-up epochs "
                f"and {self.cycles} cycles of at least one epoch"
            )

    @property
    def cycle_starts(self) -> tuple[int, ...]:
        decay = self.epochs - self.warmup
        length, remainder = divmod(decay, self.cycles)
        return tuple(self.warmup + (remainder if i else 0) + i * length for i in range(self.cycles))

    @property
    def cycle_ends(self) -> tuple[int, ...]:
        """The last epoch of each cycle (counted from 0): where snapshots are taken."""
        return tuple(start - 1 for start in self.cycle_starts[1:]) + (self.epochs - 1,)

    def rate(self, epoch: int) -> float:
        if epoch < self.warmup:
            return self.initial * (epoch + 1) / (self.warmup + 1)
        starts = self.cycle_starts
        index = max(i for i, start in enumerate(starts) if start <= epoch)
        end = starts[index + 1] if index + 1 < len(starts) else self.epochs
        return self.initial * (1 - (epoch - starts[index]) / (end - starts[index])) ** POLY_EXPONENT


def training_schedule(
    profile: TrainingProfile, *, warm: bool = False, snapshots: int = 1
) -> LearningRateSchedule | None:
    """The schedule of a warm-started or snapshot training: a warm start trains
    ``profile.warm_training_epochs`` at ``warm_learning_rate`` after ``warm_up_epochs`` of linear warm-up;
    ``snapshots > 1`` splits the decay into that many cycles. None (upstream's poly decay over
    ``profile.epochs``) for a plain training."""
    if not warm and snapshots == 1:
        return None
    if not warm:
        return LearningRateSchedule(initial=profile.learning_rate, epochs=profile.epochs, cycles=snapshots)
    return LearningRateSchedule(
        initial=profile.warm_learning_rate or profile.learning_rate,
        epochs=profile.warm_training_epochs,
        warmup=profile.warm_up_epochs,
        cycles=snapshots,
    )


class ScheduledLR:
    """Sets the optimizer's rate from a :class:`LearningRateSchedule`; nnU-Net's trainer calls
    ``step(epoch)`` at the start of every epoch, as it does with its ``PolyLRScheduler``."""

    def __init__(self, optimizer, schedule: LearningRateSchedule) -> None:
        self.optimizer = optimizer
        self.schedule = schedule
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def step(self, current_step: int) -> None:
        rate = self.schedule.rate(current_step)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self._last_lr = [rate for _ in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        return self._last_lr
