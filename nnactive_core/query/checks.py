"""Checks of everything a strategy plugin hands back to the query engine. A violation raises
:class:`QueryCheckError` naming the plugin distribution and the strategy, and stops the query before
anything is written."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np

from nnactive_core.patches.boxes import overlap_limit, violates
from nnactive_core.patches.patch import Patch
from nnactive_core.strategies.api import QueryContext


class QueryCheckError(ValueError):
    """A strategy returned something that breaks the strategy contract, or the query cannot be
    formed from what it returned."""


def who(strategy, owner: str = "") -> str:
    """``plugin <distribution>: strategy '<name>'`` for error messages."""
    name = getattr(strategy, "name", "") or type(strategy).__name__
    return f"plugin {owner}: strategy {name!r}" if owner else f"strategy {name!r}"


def _fail(strategy, owner: str, message: str) -> QueryCheckError:
    return QueryCheckError(f"{who(strategy, owner)}: {message}")


def check_pools(pools: Sequence[int], strategy, owner: str = "") -> tuple[int, ...]:
    try:
        values = tuple(int(pool) for pool in pools)
    except (TypeError, ValueError):
        raise _fail(strategy, owner, f"pools() must return integers, got {pools!r}") from None
    if not values or len(set(values)) != len(values):
        raise _fail(strategy, owner, f"pools() must return distinct pool ids, at least one, got {values}")
    return values


def check_voxel_scores(
    scores, pools: Sequence[int], shape: Sequence[int], strategy, owner: str = "", case: str = ""
) -> np.ndarray:
    """Voxel scores as float32 numpy (pools x Z x Y x X): one channel per pool, the case's shape, a
    floating dtype, every value finite."""
    where = f" on {case}" if case else ""
    if hasattr(scores, "detach"):
        if scores.is_floating_point():
            scores = scores.detach().float().cpu().numpy()
        else:
            raise _fail(strategy, owner, f"voxel_scores returned dtype {scores.dtype}{where}; expected float")
    scores = np.asarray(scores)
    expected = (len(pools), *(int(s) for s in shape))
    if scores.shape != expected:
        raise _fail(
            strategy,
            owner,
            f"voxel_scores returned shape {scores.shape}{where}; expected {expected} "
            f"(one channel per pool {tuple(pools)} x the case shape)",
        )
    if not np.issubdtype(scores.dtype, np.floating):
        raise _fail(strategy, owner, f"voxel_scores returned dtype {scores.dtype}{where}; expected float")
    scores = scores.astype(np.float32, copy=False)
    bad = ~np.isfinite(scores)
    if bad.any():
        kind = "NaN" if np.isnan(scores).any() else "infinite values"
        raise _fail(strategy, owner, f"voxel_scores returned {kind}{where} ({int(bad.sum())} voxels)")
    return scores


def check_patch_scores(
    perturbed, original_shape: Sequence[int], strategy, owner: str = "", case: str = ""
) -> np.ndarray:
    """What ``perturb`` returns: the aggregated shape, floating, no NaN (-inf ranks last and is fine)."""
    where = f" on {case}" if case else ""
    values = np.asarray(perturbed)
    if values.shape != tuple(original_shape):
        raise _fail(
            strategy, owner, f"perturb returned shape {values.shape}{where}; expected {tuple(original_shape)}"
        )
    if not np.issubdtype(values.dtype, np.floating):
        raise _fail(strategy, owner, f"perturb returned dtype {values.dtype}{where}; expected float")
    if np.isnan(values).any():
        raise _fail(strategy, owner, f"perturb returned NaN{where}")
    return values


def check_pool_order(order: Sequence[int], pools: Sequence[int], strategy, owner: str = "") -> list[int]:
    values = [int(pool) for pool in order]
    if sorted(values) != sorted(pools):
        raise _fail(strategy, owner, f"pool_order returned {values}; expected an ordering of {list(pools)}")
    return values


def check_quotas(quotas: dict, pools: Sequence[int], strategy, owner: str = "") -> dict[int, int]:
    """Quota per pool; pools the strategy leaves out get none."""
    unknown = set(quotas) - set(pools)
    if unknown:
        raise _fail(strategy, owner, f"case_quotas names pools {sorted(unknown)} that pools() does not list")
    result = {}
    for pool in pools:
        quota = quotas.get(pool, 0)
        if isinstance(quota, bool) or not isinstance(quota, int | np.integer) or quota < 0:
            raise _fail(
                strategy, owner, f"case_quotas gives pool {pool} the quota {quota!r}; expected an int >= 0"
            )
        result[int(pool)] = int(quota)
    return result


def check_composition(rows, n_candidates: int, query_size: int, strategy, owner: str = "") -> np.ndarray:
    """``compose`` must return exactly ``query_size`` distinct row indices of the candidate table."""
    values = np.asarray(rows)
    if values.ndim != 1 or (values.size and not np.issubdtype(values.dtype, np.integer)):
        raise _fail(
            strategy,
            owner,
            f"compose must return a 1-D array of row indices, got {values.dtype} of shape {values.shape}",
        )
    values = values.astype(np.int64)
    if values.size and (values.min() < 0 or values.max() >= n_candidates):
        raise _fail(strategy, owner, f"compose returned rows outside 0..{n_candidates - 1}")
    distinct = np.unique(values).size
    if distinct != values.size:
        raise _fail(strategy, owner, f"compose returned {values.size - distinct} repeated rows")
    if values.size != query_size:
        raise _fail(
            strategy,
            owner,
            f"compose returned {values.size} candidates out of {n_candidates}; "
            f"the query needs exactly {query_size}",
        )
    return values


def check_placement(
    patches: Sequence[Patch],
    ctx: QueryContext,
    *,
    shape_of: Callable[[str], Sequence[int]],
    pool_files: Collection[str],
    strategy,
    owner: str = "",
    free_mask_of: Callable[[str], np.ndarray | None] | None = None,
) -> list[Patch]:
    """Patches a placement strategy returned: exactly ``query_size`` Patch objects on pool cases,
    each inside its case, none overlapping an annotated patch or an earlier patch of the list by more
    than ``patch_overlap`` of its volume, none more than ``free_overlap`` cost-free."""
    patches = list(patches)
    if len(patches) != ctx.query_size:
        raise _fail(
            strategy,
            owner,
            f"place returned {len(patches)} patches; the query needs exactly {ctx.query_size}",
        )
    accepted: dict[str, list[Patch]] = {}
    free_masks: dict[str, np.ndarray | None] = {}
    for patch in ctx.annotated:
        accepted.setdefault(patch.file, []).append(patch)
    for index, patch in enumerate(patches):
        if not isinstance(patch, Patch):
            raise _fail(
                strategy, owner, f"place returned {type(patch).__name__} at position {index}; expected Patch"
            )
        if patch.file not in pool_files:
            raise _fail(strategy, owner, f"patch {index} is on {patch.file!r}, which is not a pool case")
        shape = tuple(shape_of(patch.file))
        if not patch.fits_in(shape):
            raise _fail(
                strategy,
                owner,
                f"patch {index} {patch.start}+{patch.size} does not fit in {patch.file} of shape {shape}",
            )
        other = violates(patch, accepted.get(patch.file, ()), ctx.patch_overlap)
        if other is not None:
            raise _fail(
                strategy,
                owner,
                f"patch {index} {patch.start}+{patch.size} on {patch.file} overlaps "
                f"{other.start}+{other.size} (allowed overlap {ctx.patch_overlap:g} of its volume)",
            )
        if free_mask_of is not None and ctx.free_overlap < 1.0:
            if patch.file not in free_masks:
                free_masks[patch.file] = free_mask_of(patch.file)
            free = free_masks[patch.file]
            limit = overlap_limit(patch.size, ctx.free_overlap)
            if free is not None and int(np.count_nonzero(free[patch.slices])) > limit:
                raise _fail(
                    strategy,
                    owner,
                    f"patch {index} {patch.start}+{patch.size} on {patch.file} is more "
                    f"than {ctx.free_overlap:g} cost-free",
                )
        accepted.setdefault(patch.file, []).append(patch)
    return patches
