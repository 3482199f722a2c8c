"""Voxel-wise uncertainty measures of an ensemble's class probabilities.

All functions take ``probs`` of shape members x classes x Z x Y x X (float16 or float32) and return
float32 maps of the same kind: a numpy array for a numpy stack (the engine's CPU path, which never
imports torch), a tensor on the stack's device for a torch tensor (the CUDA path). Both work through
the stack in slabs along Z: each slab is cast to float32 and clipped, reduced, and written into the
result, so a case never needs more than its probability stack, the result and one slab's float32
working set, whatever the input precision. A numpy slab is small enough to stay in the CPU cache
(:data:`nnactive_core.strategies.slabs.CPU_SLAB_BYTES`); a torch slab is large (:data:`SLAB_BYTES`),
as suits a device.

Natural logarithm; ``0 log 0 = 0``; probabilities are clamped to ``[0, 1]`` first, so rounding in a
float16 softmax or a resampling overshoot never produces NaN. The numpy path clamps to ``[t, 1]``
with ``t`` the smallest normal float32 (1.2e-38) instead: the logarithm then never sees 0 and needs no
mask, and ``t log t = -1.0e-36`` stands for ``0 log 0``, below every float32 score that matters. Both
backends do the same float32 operations in the same order (sum over members then divide, class sums
in channel order, member entropies summed then divided); they differ only in the last bit of the
logarithm and by that ``1e-36``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from nnactive_core.strategies.slabs import CPU_SLAB_BYTES, map_slabs
from nnactive_core.strategies.slabs import slab_depth as _depth

if TYPE_CHECKING:
    import torch

    Stack = np.ndarray | torch.Tensor

SLAB_BYTES = 64 * 2**20
"""float32 bytes of one slab of a torch stack; the working set is a small multiple of it."""

MEASURES = ("pred_entropy", "exp_entropy", "mutual_information")

_TINY = float(np.finfo(np.float32).tiny)
"""Lower clamp of a numpy slab: no zero reaches the logarithm (and no subnormal, which is slow)."""


def _check(probs: Stack) -> None:
    if probs.ndim != 5:
        raise ValueError(f"probabilities must be members x classes x Z x Y x X, got {tuple(probs.shape)}")
    if probs.shape[0] < 1 or probs.shape[1] < 2:
        raise ValueError(f"probabilities need at least 1 member and 2 classes, got {tuple(probs.shape)}")


def slab_depth(probs: Stack, slab_bytes: int = SLAB_BYTES) -> int:
    """Z slices per slab so one slab's float32 copy stays within ``slab_bytes`` (at least one slice)."""
    return _depth(tuple(probs.shape), slab_bytes)


# numpy: the engine's CPU path, one float32 slab at a time (see nnactive_core.strategies.slabs)


def _xlogx(values: np.ndarray) -> np.ndarray:
    """``values * log(values)`` for values clamped to ``[_TINY, 1]``."""
    logs = np.log(values)
    return np.multiply(values, logs, out=logs)


def _np_mean(slab: np.ndarray) -> np.ndarray:
    mean = np.add.reduce(slab, axis=0)
    return np.divide(mean, slab.shape[0], out=mean)


def _np_entropy(mean: np.ndarray) -> np.ndarray:
    """``H[mean]`` over the class axis 0."""
    entropy = np.add.reduce(_xlogx(mean), axis=0)
    return np.negative(entropy, out=entropy)


def _np_expected_entropy(slab: np.ndarray) -> np.ndarray:
    member = np.add.reduce(_xlogx(slab), axis=1)
    np.negative(member, out=member)
    expected = np.add.reduce(member, axis=0)
    return np.divide(expected, slab.shape[0], out=expected)


def _np_mutual(slab: np.ndarray) -> np.ndarray:
    mutual = _np_entropy(_np_mean(slab))
    mutual -= _np_expected_entropy(slab)
    # float error can push PE - EE slightly below 0; power noise takes log of the scores
    return np.maximum(mutual, 0.0, out=mutual)[None]


def _np_class_weighted(index: list[int]) -> Callable[[np.ndarray], np.ndarray]:
    def reduce(slab: np.ndarray) -> np.ndarray:
        mean = _np_mean(slab)
        maps = np.empty((len(index) + 1, *mean.shape[1:]), dtype=np.float32)
        predictive = maps[-1]
        predictive[...] = _np_entropy(mean)
        np.multiply(mean[index], predictive, out=maps[:-1])
        return maps

    return reduce


# torch: the same steps on the stack's device


def _entropy(p: torch.Tensor, dim: int) -> torch.Tensor:
    import torch

    return -torch.special.xlogy(p, p).sum(dim=dim)


def _torch_map(
    probs: torch.Tensor, channels: int, reduce: Callable[[torch.Tensor], torch.Tensor], slab_bytes: int | None
) -> torch.Tensor:
    """Apply ``reduce`` (float32 slab M x C x z x Y x X -> channels x z x Y x X) slab by slab."""
    import torch

    _, _, depth, height, width = probs.shape
    out = torch.empty((channels, depth, height, width), dtype=torch.float32, device=probs.device)
    step = slab_depth(probs, slab_bytes or SLAB_BYTES)
    with torch.no_grad():
        for z0 in range(0, depth, step):
            # out of place: for float32 input .to() returns a view of the caller's tensor
            slab = probs[:, :, z0 : z0 + step].to(torch.float32).clamp(0.0, 1.0)
            out[:, z0 : z0 + step] = reduce(slab)
    return out


def _torch_mutual(slab: torch.Tensor) -> torch.Tensor:
    predictive = _entropy(slab.mean(dim=0), dim=0)
    expected = _entropy(slab, dim=1).mean(dim=0)
    return (predictive - expected).clamp_(min=0.0).unsqueeze(0)


def _torch_class_weighted(index: list[int]) -> Callable[[torch.Tensor], torch.Tensor]:
    def reduce(slab: torch.Tensor) -> torch.Tensor:
        import torch

        mean = slab.mean(dim=0)
        predictive = _entropy(mean, dim=0)
        return torch.cat([mean[index] * predictive, predictive.unsqueeze(0)], dim=0)

    return reduce


def _apply(probs: Stack, channels: int, numpy_reduce, torch_reduce, slab_bytes: int | None) -> Stack:
    _check(probs)
    if isinstance(probs, np.ndarray):
        return map_slabs(
            probs, channels, numpy_reduce, clip=(_TINY, 1.0), slab_bytes=slab_bytes or CPU_SLAB_BYTES
        )
    return _torch_map(probs, channels, torch_reduce, slab_bytes)


def predictive_entropy(probs: Stack, slab_bytes: int | None = None) -> Stack:
    """``H[mean_m p_m]`` per voxel: Z x Y x X float32."""
    return _apply(
        probs,
        1,
        lambda s: _np_entropy(_np_mean(s))[None],
        lambda s: _entropy(s.mean(dim=0), dim=0).unsqueeze(0),
        slab_bytes,
    )[0]


def expected_entropy(probs: Stack, slab_bytes: int | None = None) -> Stack:
    """``mean_m H[p_m]`` per voxel: Z x Y x X float32."""
    return _apply(
        probs,
        1,
        lambda s: _np_expected_entropy(s)[None],
        lambda s: _entropy(s, dim=1).mean(dim=0).unsqueeze(0),
        slab_bytes,
    )[0]


def mutual_information(probs: Stack, slab_bytes: int | None = None) -> Stack:
    """BALD: ``PE - EE`` per voxel, clipped at 0 (it is >= 0 in exact arithmetic): Z x Y x X float32."""
    return _apply(probs, 1, _np_mutual, _torch_mutual, slab_bytes)[0]


def measure(name: str, probs: Stack, slab_bytes: int | None = None) -> Stack:
    """The measure called ``name`` (one of :data:`MEASURES`)."""
    functions = {
        "pred_entropy": predictive_entropy,
        "exp_entropy": expected_entropy,
        "mutual_information": mutual_information,
    }
    if name not in functions:
        raise ValueError(f"unknown uncertainty measure {name!r}; known: {', '.join(MEASURES)}")
    return functions[name](probs, slab_bytes)


def class_weighted_entropy(probs: Stack, channels: Sequence[int], slab_bytes: int | None = None) -> Stack:
    """ClaS PE maps: ``PE * mean_m p_m[c]`` for each class channel ``c`` in ``channels``, then plain PE
    as the last map: (len(channels) + 1) x Z x Y x X float32."""
    _check(probs)
    classes = probs.shape[1]
    for channel in channels:
        if not 0 <= channel < classes:
            raise ValueError(f"class channel {channel} is out of range for {classes} probability channels")
    index = list(channels)
    return _apply(probs, len(index) + 1, _np_class_weighted(index), _torch_class_weighted(index), slab_bytes)
