"""Helpers for strategies' ``perturb`` and ``compose``: stochastic ranking, stratified quotas and β
schedules. Every random draw comes from the ``rng`` passed in (seeded by the engine).

Gumbel-top-k: ranking ``log w_i + G_i`` with ``G_i ~ Gumbel(0, 1)`` i.i.d. is the order of drawing
items without replacement with probability proportional to ``w_i``. :func:`power_noise` uses
``w = s^beta`` (``log s + Gumbel(0, 1/beta)`` ranks the same as ``beta log s + Gumbel(0, 1)``), and
:func:`soft_rank_scores` uses ``w = 1 / rank``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from nnactive_core.strategies.api import GLOBAL_POOL, CandidateTable

# log of the smallest positive float64: what scores <= 0 count as (see power_noise)
LOG_TINY = float(np.log(np.finfo(np.float64).tiny))


def _finite_scores(scores: np.ndarray, helper: str) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError(f"{helper}: scores contain NaN")
    return values


def power_noise(scores: np.ndarray, beta: float, rng: np.random.Generator) -> np.ndarray:
    """``log(s) + Gumbel(0, 1/beta)`` elementwise (any shape, float64): ranking the result samples
    without replacement with probability proportional to ``s^beta``.

    Scores ``s <= 0`` (an empty box, or a tiny negative mutual information from rounding) count as the
    smallest positive float64: their log is -708.4, finite, so the result is never NaN or -inf, and
    they rank behind every positive score (their sampling weight ``tiny^beta`` is practically 0) in an
    order that is still random. NaN scores are an error."""
    if not beta > 0:
        raise ValueError(f"power_noise: beta must be positive, got {beta!r}")
    values = np.asarray(scores)
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    if np.isnan(values).any():
        raise ValueError("power_noise: scores contain NaN")
    # the float64 log of float32 scores, without a float64 copy of them first: the same values
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(values, dtype=np.float64)
    # log(0) is -inf and log(s < 0) NaN; fmax, unlike maximum, replaces NaN as well
    np.fmax(logs, LOG_TINY, out=logs)
    logs += gumbel(values.shape, 1.0 / beta, rng)
    return logs


def gumbel(shape, scale: float, rng: np.random.Generator) -> np.ndarray:
    """``rng.gumbel(0, scale, shape)`` from the same uniforms ``u`` (``U = 1 - u``, ``-scale
    log(-log U))``), but in whole-array passes, about half the time of numpy's per-draw loop, which made
    the noise cost as much as scoring a case. numpy's vectorised logarithm can differ from the C
    library's in the last bit, so a few draws in a thousand differ from ``rng.gumbel``'s by 1e-16
    relative. numpy rejects ``U = 1`` (``u = 0``, probability 2^-53 per draw) and draws again; those
    few entries are redrawn the same way here."""
    uniform = rng.random(size=shape)
    while not uniform.all():
        rejected = uniform == 0.0
        uniform[rejected] = rng.random(size=int(rejected.sum()))
    noise = np.subtract(1.0, uniform, out=uniform)
    np.log(noise, out=noise)
    np.negative(noise, out=noise)
    np.log(noise, out=noise)
    return np.multiply(noise, -scale, out=noise)


def soft_rank_scores(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``-log(rank) + Gumbel(0, 1)`` for a 1-D score vector, rank 1 = highest score (ties: lower
    index first): ranking the result samples without replacement with probability proportional to
    ``1 / rank``."""
    values = _finite_scores(scores, "soft_rank_scores")
    if values.ndim != 1:
        raise ValueError(f"soft_rank_scores: expected a 1-D score vector, got shape {values.shape}")
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[np.argsort(-values, kind="stable")] = np.arange(1, values.size + 1)
    return -np.log(ranks) + gumbel(values.size, 1.0, rng)


def stratified_quotas(
    query_size: int, ratio: float, class_pools: Sequence[int], rng: np.random.Generator
) -> dict[int, int]:
    """Patches per pool for one query, the established rule (nnActive's ClaS PE): ``n_cls =
    floor(query_size * ratio)`` go to the F class pools, ``n_cls // F`` each, and the ``n_cls mod F``
    left over one each to the first pools of a seeded shuffle (distinct pools); :data:`GLOBAL_POOL`
    gets ``query_size - n_cls``. The product is floored in float64 as the established code does, so
    ``100 * 0.29 = 28.999999999999996`` gives 28. Without class pools the global pool gets everything
    (the established code then composed fewer than ``query_size`` patches and failed)."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"stratified_quotas: ratio must lie in [0, 1], got {ratio!r}")
    pools = [int(pool) for pool in class_pools]
    if GLOBAL_POOL in pools or len(set(pools)) != len(pools):
        raise ValueError(f"stratified_quotas: class pools must be distinct labels, got {pools}")
    if not pools:
        return {GLOBAL_POOL: int(query_size)}
    n_class = math.floor(int(query_size) * float(ratio))
    base, remainder = divmod(n_class, len(pools))
    quotas = {pool: base for pool in pools}
    for index in rng.permutation(len(pools))[:remainder]:
        quotas[pools[int(index)]] += 1
    quotas[GLOBAL_POOL] = int(query_size) - n_class
    return quotas


def top_k_per_pool(candidates: CandidateTable, quotas: dict[int, int]) -> np.ndarray:
    """Rows of the best ``quotas[pool]`` candidates of each pool by score (ties: lower row first).

    A pool with fewer candidates than its quota does not fail the query (the established code
    crashed there): its shortfall is filled with the best remaining candidates of any pool, so the
    result has ``sum(quotas)`` rows whenever the table holds that many. Fewer rows come back only when
    the whole table is smaller; the engine then reports the shortage."""
    scores = np.asarray(candidates.score, dtype=np.float64)
    pools = np.asarray(candidates.pool)
    order = np.argsort(-scores, kind="stable")
    taken = np.zeros(len(scores), dtype=bool)
    chosen: list[np.ndarray] = []
    for pool, quota in quotas.items():
        rows = order[pools[order] == pool][: max(0, int(quota))]
        taken[rows] = True
        chosen.append(rows)
    shortfall = sum(max(0, int(q)) for q in quotas.values()) - int(taken.sum())
    if shortfall > 0:
        chosen.append(order[~taken[order]][:shortfall])
    return np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, dtype=np.int64)


def exponential_beta(t: int, steps: int, start: float = 1.0, end: float = 100.0) -> float:
    """``start * (end / start)^(t / (steps - 1))``: from ``start`` at t = 0 to ``end`` at t = steps-1.
    A single step gives ``start``."""
    if steps <= 1:
        return float(start)
    return float(start * (end / start) ** (t / (steps - 1)))


def sigmoid_beta(t: int, steps: int, temperature: float, start: float = 1.0, end: float = 100.0) -> float:
    """A logistic curve over ``u = linspace(-6, 6, steps)`` with ``temperature``, rescaled so that
    t = 0 gives ``start`` and t = steps-1 gives ``end``. A single step gives ``start``."""
    if not temperature > 0:
        raise ValueError(f"sigmoid_beta: temperature must be positive, got {temperature!r}")
    if steps <= 1:
        return float(start)
    sigma = 1.0 / (1.0 + np.exp(-np.linspace(-6.0, 6.0, steps) / temperature))
    scaled = (sigma[t] - sigma.min()) / (sigma.max() - sigma.min())
    return float(start + (end - start) * scaled)
