"""Entry point of the ``nnactive-random-fg`` plugin: the foreground-aware random baselines and the
class-covering starting budgets."""

from __future__ import annotations

from nnactive_core import hookimpl
from nnactive_core.strategies.random_uniform import UniformRandom
from nnactive_random_fg.all_classes import AllClasses
from nnactive_random_fg.label_random import RandomLabel

RANDOM_LABEL = RandomLabel(
    name="random-label",
    description="Random patches, about 2/3 centred on foreground or its border (Random 66% FG).",
    display_name="Random 66% FG",
    mode_weights=(1, 1, 1),
)
RANDOM_LABEL2 = RandomLabel(
    name="random-label2",
    description="Random patches, about 1/3 centred on foreground or its border (Random 33% FG).",
    display_name="Random 33% FG",
    mode_weights=(4, 1, 1),
)
STRATEGIES = (
    RANDOM_LABEL,
    RANDOM_LABEL2,
    AllClasses(
        name="random-all-classes",
        description="2 patches per label (background included) in distinct cases, then uniform random.",
        display_name="Random, all classes",
        base=UniformRandom(),
    ),
    AllClasses(
        name="random-label-all-classes",
        description="2 patches per label (background included) in distinct cases, then random-label.",
        display_name="Random 66% FG, all classes",
        base=RANDOM_LABEL,
    ),
    AllClasses(
        name="random-label2-all-classes",
        description="Standard starting budget: 2 patches per label (incl. background), then random-label2.",
        display_name="Random 33% FG, all classes",
        base=RANDOM_LABEL2,
    ),
)


@hookimpl
def nnactive_register_strategies(register):
    for strategy in STRATEGIES:
        register(strategy)
