"""Power noising (stochastic batch acquisition) and the schedules of its exponent β.

Ranking aggregated patch scores ``s`` by ``log s + Gumbel(0, 1/β)`` samples patches without
replacement with probability proportional to ``s^β`` (the Gumbel-top-k trick): β = 1 samples in
proportion to the score, larger β is greedier. The noise goes on *patch* scores, because noise on
voxels would average out in the box filter.

Schedules are indexed by the query's position in the experiment: the model that queries for loop file
``ctx.loop`` was trained at loop ``t = ctx.loop - 1`` of ``ctx.query_steps`` loops, so with 5 steps the
four queries see t = 0..3 (an exponential schedule from 1 to 100 gives β = 1, 3.162, 10, 31.62).
"""

from __future__ import annotations

import attrs
import numpy as np

from nnactive_core.strategies.api import QueryContext
from nnactive_strategies_bald.uncertainty import UncertaintyStrategy


def _step(ctx: QueryContext) -> int:
    """The training loop of the querying model, kept inside the schedule's range."""
    return min(max(ctx.loop - 1, 0), max(ctx.query_steps - 1, 0))


def _positive(instance, attribute, value) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


@attrs.frozen(kw_only=True)
class ConstantBeta:
    """The same β for every query."""

    beta: float = attrs.field(default=1.0, converter=float, validator=_positive)

    def __call__(self, ctx: QueryContext) -> float:
        return float(self.beta)


@attrs.frozen(kw_only=True)
class ExponentialBeta:
    """``β_t = start * (end / start)^(t / (steps - 1))``: geometric growth, noise shrinks each loop."""

    start: float = attrs.field(default=1.0, converter=float, validator=_positive)
    end: float = attrs.field(default=100.0, converter=float, validator=_positive)

    def __call__(self, ctx: QueryContext) -> float:
        from nnactive_core.strategies.compose import exponential_beta

        return float(exponential_beta(_step(ctx), ctx.query_steps, start=self.start, end=self.end))


@attrs.frozen(kw_only=True)
class SigmoidBeta:
    """β follows a logistic curve over the loops, rescaled to ``[start, end]``; a small ``temperature``
    switches sharply from exploration to exploitation half way, a large one smoothly."""

    temperature: float = attrs.field(converter=float, validator=_positive)
    start: float = attrs.field(default=1.0, converter=float, validator=_positive)
    end: float = attrs.field(default=100.0, converter=float, validator=_positive)

    def __call__(self, ctx: QueryContext) -> float:
        from nnactive_core.strategies.compose import sigmoid_beta

        beta = sigmoid_beta(_step(ctx), ctx.query_steps, self.temperature, start=self.start, end=self.end)
        return float(beta)


BetaSchedule = ConstantBeta | ExponentialBeta | SigmoidBeta


def as_schedule(value: BetaSchedule | float) -> BetaSchedule:
    """A number means a constant β."""
    if isinstance(value, ConstantBeta | ExponentialBeta | SigmoidBeta):
        return value
    return ConstantBeta(beta=float(value))


def noised(
    patch_scores: np.ndarray, schedule: BetaSchedule, ctx: QueryContext, rng: np.random.Generator
) -> np.ndarray:
    """Patch scores with power noise for this query's β (through the core's ``power_noise``)."""
    from nnactive_core.strategies.compose import power_noise

    return power_noise(patch_scores, schedule(ctx), rng)


@attrs.frozen(kw_only=True)
class PowerStrategy(UncertaintyStrategy):
    """An uncertainty measure whose aggregated patch scores are power-noised before selection."""

    beta: BetaSchedule = attrs.field(factory=ConstantBeta, converter=as_schedule)

    def perturb(self, patch_scores: np.ndarray, ctx: QueryContext, rng: np.random.Generator) -> np.ndarray:
        return noised(patch_scores, self.beta, ctx, rng)
