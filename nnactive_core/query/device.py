"""The engine's torch side: a case's stack on the strategy's device, and the patch means there.

Imported only when a strategy scores in torch (on an accelerator, or a strategy that takes tensors
only), so a CPU query with numpy strategies never imports torch.

On a device other than the CPU a stack in RAM crosses to the device in one host-to-device copy; a
memory-mapped stack (spilled by prediction because it exceeds the memory bound) crosses slab by slab,
so RAM never holds it whole. The voxel scores stay on the device: :func:`box_means` aggregates them
there and only the patch-score grid comes back.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch

from nnactive_core.patches.aggregate import grid_shape, kernel_size
from nnactive_core.strategies.slabs import SlabSource, is_mapped, slab_depth

TRANSFER_SLAB_BYTES = 256 * 2**20
"""Largest slab of a memory-mapped stack held in RAM on its way to the device."""


def on_cpu(device: str | torch.device) -> bool:
    return torch.device(device).type == "cpu"


def _tensor_of(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor sharing ``array``'s memory; read-only arrays are only ever read from here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the given NumPy array is not writable"
        return torch.from_numpy(np.ascontiguousarray(array))


def to_device(probabilities: np.ndarray | torch.Tensor, device: str) -> torch.Tensor:
    """The stack as a tensor on ``device`` in its own dtype. On the CPU a writable array is shared, not
    copied; a read-only one is copied (the strategy may write into its tensor)."""
    if isinstance(probabilities, torch.Tensor):
        return probabilities.to(device)
    array = np.asarray(probabilities)
    if on_cpu(device):
        if not array.flags.writeable:
            array = array.copy()
        return torch.from_numpy(np.ascontiguousarray(array))
    if not is_mapped(array):
        return _tensor_of(array).to(device)
    return in_slabs(array, device)


def in_slabs(array: np.ndarray, device: str) -> torch.Tensor:
    """``array`` on ``device``, read one slab of at most :data:`TRANSFER_SLAB_BYTES` at a time into a
    staging buffer (a memory map by positioned reads, see
    :class:`~nnactive_core.strategies.slabs.SlabSource`) and copied over."""
    members, classes, depth, height, width = array.shape
    step = min(slab_depth(array.shape, TRANSFER_SLAB_BYTES), depth)
    staging = np.empty((members, classes, step, height, width), dtype=array.dtype)
    out = torch.empty(array.shape, dtype=torch.from_numpy(staging).dtype, device=device)
    with SlabSource(array) as source:
        for z0 in range(0, depth, step):
            z = slice(z0, min(z0 + step, depth))
            out[:, :, z].copy_(torch.from_numpy(source.read(z, staging)))
    return out


def _window_sums(values: torch.Tensor, axis: int, kernel: int, stride: int, count: int) -> torch.Tensor:
    """Sums of ``kernel`` consecutive entries along ``axis`` from 0, stride, ... (float64)."""
    cumulative = torch.cumsum(values, dim=axis, dtype=torch.float64)
    last = stride * (count - 1)
    result = cumulative.narrow(axis, kernel - 1, last + 1)[_every(axis, stride, values.ndim)].clone()
    if count > 1:
        previous = cumulative.narrow(axis, stride - 1, last - stride + 1)[_every(axis, stride, values.ndim)]
        result.narrow(axis, 1, count - 1).sub_(previous)
    return result


def _every(axis: int, stride: int, ndim: int) -> tuple:
    return (slice(None),) * axis + (slice(None, None, stride),) + (slice(None),) * (ndim - axis - 1)


def box_means(scores: torch.Tensor, patch_size: Sequence[int], stride: Sequence[int]) -> np.ndarray:
    """Patch-score grid (pools x grid, float32 numpy) of voxel scores (pools x Z x Y x X) on their
    device: the same float64 prefix sums as :func:`nnactive_core.patches.aggregate.box_means`. A
    device adds in another order, so a mean can differ from the CPU's in its last float32 bit."""
    shape = tuple(int(s) for s in scores.shape[1:])
    kernel = kernel_size(shape, patch_size)
    grid = grid_shape(shape, patch_size, stride)
    sums = scores
    for axis in range(3):
        sums = _window_sums(sums, axis + 1, kernel[axis], int(stride[axis]), grid[axis])
    volume = float(np.prod(kernel))
    return (sums / volume).to(torch.float32).cpu().numpy()
