"""Whether an experiment's patches and queries fit its pool, checked at setup before anything is
written or trained: a patch larger than the cases, or more patches than the pool can hold, would
otherwise fail (or be clipped in silence) only after a loop of training, when neither value can change
any more for the experiment.

A patch larger than a case along an axis is refused, unless the config's ``clip_patch_to_case`` allows
it: then the patch covers the whole case along that axis (as the established grid clips it) and the
setup says so. The pool holds at most ``prod(shape // size)`` non-overlapping patches per case (an
interval of length ``p`` holds exactly one point of a lattice with step ``p``), so with
``patch_overlap = 0`` an experiment needing more is refused; the patches a score strategy may choose per
case and query bound each query too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.querying import query_context, resolve_strategy
from nnactive_core.strategies.api import ScoreStrategy

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset
    from nnactive_core.plugins import Registry

AXES = ("z", "y", "x")


class PoolFitError(ValueError):
    """The experiment's patches or queries do not fit its pool; the message names the field."""


def _size(values) -> str:
    return "x".join(str(int(v)) for v in values)


def patch_fit(config: ExperimentConfig, shapes: dict[str, tuple[int, int, int]]) -> list[str]:
    """Warnings about patches clipped to the case (with ``clip_patch_to_case``); raises without it."""
    smallest = np.min(np.asarray(list(shapes.values()), dtype=np.int64), axis=0)
    larger = [axis for axis in range(3) if config.patch_size[axis] > smallest[axis]]
    if not larger:
        return []
    cases = [case for case, shape in shapes.items() if any(config.patch_size[a] > shape[a] for a in larger)]
    where = ", ".join(f"{AXES[a]} ({config.patch_size[a]} > {int(smallest[a])} voxels)" for a in larger)
    detail = f"{len(cases)} of {len(shapes)} pool case(s), e.g. {cases[0]} of shape {_size(shapes[cases[0]])}"
    if not config.clip_patch_to_case:
        raise PoolFitError(
            f"experiment config field 'patch_size': {_size(config.patch_size)} is larger than {detail} "
            f"along {where}; choose a smaller patch size, or allow whole-case patches along those axes "
            "with clip_patch_to_case (--clip-patch-to-case)"
        )
    return [
        f"patch size {_size(config.patch_size)} is larger than {detail} along {where}: there, patches cover "
        "the whole case along that axis (clip_patch_to_case)"
    ]


def capacity(shapes: dict[str, tuple[int, int, int]], patch_size) -> int:
    """The most non-overlapping patches of ``patch_size`` (clipped to each case) the cases can hold."""
    total = 0
    for shape in shapes.values():
        kernel = np.minimum(np.asarray(patch_size, dtype=np.int64), np.asarray(shape, dtype=np.int64))
        total += int(np.prod(np.asarray(shape, dtype=np.int64) // kernel))
    return total


def query_fit(config: ExperimentConfig, shapes: dict[str, tuple[int, int, int]]) -> list[str]:
    """Raises when the experiment needs more patches than the pool can hold; warns when it needs more
    than half of them: patches where a strategy puts them, not on a lattice, leave gaps no patch fits
    in (randomly placed parallel cubes jam at about 42 % of the volume), so a later query may find too
    few free candidates and stop the experiment. On the brain-atlas pool, 18 placed patches of 20^3 out
    of at most 36 left room for 6."""
    needed = config.sbs + config.query_size * config.queries
    if config.patch_overlap > 0:
        return []
    room = capacity(shapes, config.patch_size)
    if needed > room:
        raise PoolFitError(
            f"experiment config fields 'query_size', 'starting_budget_size' and 'query_steps': the "
            f"experiment annotates {needed} patches (starting budget {config.sbs} + {config.queries} "
            f"queries of {config.query_size}), but its {len(shapes)} pool case(s) hold at most {room} "
            f"non-overlapping patches of size {_size(config.patch_size)}; lower the query size, the "
            "starting budget or the number of loops, or choose a smaller patch size"
        )
    if 2 * needed > room:
        return [
            f"the experiment annotates {needed} patches of size {_size(config.patch_size)}, more than half "
            f"of the {room} its pool can hold without overlap: a later query may find too few free "
            "candidates; a smaller patch size or query size leaves room"
        ]
    return []


def candidates_fit(config: ExperimentConfig, dataset: Dataset, registry: Registry, cases: int) -> None:
    """A score strategy picks at most its per-case quotas from each case: the query must fit them."""
    from nnactive_core.query.checks import check_pools, check_quotas
    from nnactive_core.query.engine import calling

    if config.queries == 0:
        return
    strategy, owner = resolve_strategy(registry, config.strategy)
    if not isinstance(strategy, ScoreStrategy):
        return
    ctx = query_context(config, dataset, loop=1, annotated=())
    with calling(strategy, owner, "pools"):
        pools = check_pools(strategy.pools(ctx), strategy, owner)
    with calling(strategy, owner, "case_quotas"):
        per_case = sum(check_quotas(strategy.case_quotas(ctx), pools, strategy, owner).values())
    if per_case * cases < config.query_size:
        raise PoolFitError(
            f"experiment config field 'query_size': {config.query_size} patches per query, but strategy "
            f"{config.strategy!r} takes at most {per_case} candidate(s) from each of the {cases} pool "
            f"case(s) (patches_per_case {config.per_case}); raise patches_per_case or lower the query size"
        )


def check_pool_fit(config: ExperimentConfig, dataset: Dataset, registry: Registry) -> list[str]:
    """Raise :class:`PoolFitError` when the experiment cannot fit its pool; returns warnings."""
    shapes = {case: tuple(int(v) for v in dataset.shape(case)) for case in dataset.pool_cases()}
    if not shapes:
        raise PoolFitError(f"base dataset {config.dataset} has no pool cases")
    warnings = patch_fit(config, shapes) + query_fit(config, shapes)
    candidates_fit(config, dataset, registry, len(shapes))
    return warnings
