"""Voxel-wise uncertainty measures of an ensemble's class probabilities.

All functions take ``probs`` of shape members x classes x Z x Y x X (float16 or float32, on any device)
and work through it in slabs along Z: each slab is cast to float32, reduced, and written into a float32
result on the same device. So a case never needs more than its probability stack, the result and one
slab's float32 working set, whatever the input precision.

Natural logarithm; ``0 log 0 = 0``; probabilities are clamped to ``[0, 1]`` first, so rounding in a
float16 softmax never produces NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SLAB_BYTES = 64 * 2**20
"""float32 bytes of one slab of the probability stack; the working set is a small multiple of it."""

MEASURES = ("pred_entropy", "exp_entropy", "mutual_information")


def _check(probs: torch.Tensor) -> None:
    if probs.ndim != 5:
        raise ValueError(f"probabilities must be members x classes x Z x Y x X, got {tuple(probs.shape)}")
    if probs.shape[0] < 1 or probs.shape[1] < 2:
        raise ValueError(f"probabilities need at least 1 member and 2 classes, got {tuple(probs.shape)}")


def slab_depth(probs: torch.Tensor, slab_bytes: int = SLAB_BYTES) -> int:
    """Z slices per slab so one slab's float32 copy stays within ``slab_bytes`` (at least one slice)."""
    members, classes, _, height, width = probs.shape
    per_slice = members * classes * height * width * 4
    return max(1, slab_bytes // max(per_slice, 1))


def _entropy(p: torch.Tensor, dim: int) -> torch.Tensor:
    import torch

    return -torch.special.xlogy(p, p).sum(dim=dim)


def _map_slabs(
    probs: torch.Tensor, channels: int, reduce: Callable[[torch.Tensor], torch.Tensor], slab_bytes: int
) -> torch.Tensor:
    """Apply ``reduce`` (float32 slab M x C x z x Y x X -> channels x z x Y x X) slab by slab."""
    import torch

    _check(probs)
    _, _, depth, height, width = probs.shape
    out = torch.empty((channels, depth, height, width), dtype=torch.float32, device=probs.device)
    step = slab_depth(probs, slab_bytes)
    with torch.no_grad():
        for z0 in range(0, depth, step):
            # out of place: for float32 input .to() returns a view of the caller's tensor
            slab = probs[:, :, z0 : z0 + step].to(torch.float32).clamp(0.0, 1.0)
            out[:, z0 : z0 + step] = reduce(slab)
    return out


def _mutual(slab: torch.Tensor) -> torch.Tensor:
    predictive = _entropy(slab.mean(dim=0), dim=0)
    expected = _entropy(slab, dim=1).mean(dim=0)
    # float error can push PE - EE slightly below 0; power noise takes log of the scores
    return (predictive - expected).clamp_(min=0.0).unsqueeze(0)


def predictive_entropy(probs: torch.Tensor, slab_bytes: int = SLAB_BYTES) -> torch.Tensor:
    """``H[mean_m p_m]`` per voxel: Z x Y x X float32."""
    return _map_slabs(probs, 1, lambda s: _entropy(s.mean(dim=0), dim=0).unsqueeze(0), slab_bytes)[0]


def expected_entropy(probs: torch.Tensor, slab_bytes: int = SLAB_BYTES) -> torch.Tensor:
    """``mean_m H[p_m]`` per voxel: Z x Y x X float32."""
    return _map_slabs(probs, 1, lambda s: _entropy(s, dim=1).mean(dim=0).unsqueeze(0), slab_bytes)[0]


def mutual_information(probs: torch.Tensor, slab_bytes: int = SLAB_BYTES) -> torch.Tensor:
    """BALD: ``PE - EE`` per voxel, clipped at 0 (it is >= 0 in exact arithmetic): Z x Y x X float32."""
    return _map_slabs(probs, 1, _mutual, slab_bytes)[0]


def measure(name: str, probs: torch.Tensor, slab_bytes: int = SLAB_BYTES) -> torch.Tensor:
    """The measure called ``name`` (one of :data:`MEASURES`)."""
    functions = {
        "pred_entropy": predictive_entropy,
        "exp_entropy": expected_entropy,
        "mutual_information": mutual_information,
    }
    if name not in functions:
        raise ValueError(f"unknown uncertainty measure {name!r}; known: {', '.join(MEASURES)}")
    return functions[name](probs, slab_bytes)


def class_weighted_entropy(
    probs: torch.Tensor, channels: Sequence[int], slab_bytes: int = SLAB_BYTES
) -> torch.Tensor:
    """ClaS PE maps: ``PE * mean_m p_m[c]`` for each class channel ``c`` in ``channels``, then plain PE
    as the last map: (len(channels) + 1) x Z x Y x X float32."""
    _check(probs)
    classes = probs.shape[1]
    for channel in channels:
        if not 0 <= channel < classes:
            raise ValueError(f"class channel {channel} is out of range for {classes} probability channels")
    index = list(channels)

    def reduce(slab: torch.Tensor) -> torch.Tensor:
        import torch

        mean = slab.mean(dim=0)
        predictive = _entropy(mean, dim=0)
        return torch.cat([mean[index] * predictive, predictive.unsqueeze(0)], dim=0)

    return _map_slabs(probs, len(index) + 1, reduce, slab_bytes)
