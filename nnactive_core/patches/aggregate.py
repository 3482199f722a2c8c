"""Box-filter aggregation: the mean voxel score of the patch box at every start position of a grid.

Grid: on each axis the kernel is ``k = min(patch, image)`` (a patch larger than the case shrinks to the
case) and the starts are ``0, s, 2s, ... <= image - k`` for the stride ``s``, so every box lies fully
inside the case and the grid has ``(image - k) // s + 1`` positions. This is the established grid (the
reference counts 729 / 405 / 30 rest on it). Far border: the last start is ``((image - k) // s) * s``,
so with ``s > 1`` the last ``(image - k) % s`` voxels of an axis lie in no candidate; stride 1 (the
default), or a stride dividing ``image - k``, leaves nothing out.

Sums come from 1-D cumulative sums in float64, one axis after the other (a separable summed-area
table): the cost is a few passes over the volume whatever the patch size, and the error stays at
float64 rounding of sums over one image axis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# the first axis is summed in blocks so that its float64 cumulative sum never holds a whole volume
_BLOCK_ELEMENTS = 1 << 22


def kernel_size(shape: Sequence[int], patch_size: Sequence[int]) -> tuple[int, int, int]:
    return tuple(min(int(p), int(s)) for p, s in zip(patch_size, shape, strict=True))  # type: ignore[return-value]


def grid_shape(
    shape: Sequence[int], patch_size: Sequence[int], stride: Sequence[int]
) -> tuple[int, int, int]:
    """Number of start positions per axis."""
    if any(int(s) < 1 for s in stride):
        raise ValueError(f"stride must be positive on every axis, got {tuple(stride)}")
    if any(int(s) < 1 for s in shape):
        raise ValueError(f"case shape must be positive on every axis, got {tuple(shape)}")
    kernel = kernel_size(shape, patch_size)
    return tuple((int(d) - k) // int(s) + 1 for d, k, s in zip(shape, kernel, stride, strict=True))  # type: ignore[return-value]


def grid_starts(flat_indices: np.ndarray, grid: Sequence[int], stride: Sequence[int]) -> np.ndarray:
    """Patch start coordinates (n x 3, int64) of flat indices into a grid of shape ``grid``."""
    coords = np.unravel_index(np.asarray(flat_indices, dtype=np.int64), tuple(grid))
    return np.stack(coords, axis=-1).astype(np.int64) * np.asarray(stride, dtype=np.int64)


def _along(axis: int, index) -> tuple:
    return (slice(None),) * axis + (index,)


def _prefix_sums(values: np.ndarray, axis: int) -> np.ndarray:
    """Cumulative sums along ``axis`` in float64."""
    if axis == values.ndim - 1:
        return np.cumsum(values, axis=axis, dtype=np.float64)
    # numpy's cumsum along a leading axis is about 20x slower than adding whole slabs one by one
    out = np.empty(values.shape, dtype=np.float64)
    source, target = np.moveaxis(values, axis, 0), np.moveaxis(out, axis, 0)
    target[0] = source[0]
    for index in range(1, len(source)):
        np.add(target[index - 1], source[index], out=target[index])
    return out


def _window_sums(values: np.ndarray, axis: int, kernel: int, stride: int, count: int) -> np.ndarray:
    """Sums of ``kernel`` consecutive entries along ``axis`` starting at 0, stride, ..., in float64."""
    cumulative = _prefix_sums(values, axis)
    last = stride * (count - 1)
    result = cumulative[_along(axis, slice(kernel - 1, kernel + last, stride))].copy()
    if count > 1:
        result[_along(axis, slice(1, None))] -= cumulative[_along(axis, slice(stride - 1, last, stride))]
    return result


def box_sums(volume: np.ndarray, patch_size: Sequence[int], stride: Sequence[int] = (1, 1, 1)) -> np.ndarray:
    """Sum of ``volume`` (Z x Y x X) over the box at every grid start, float64 of shape ``grid_shape``."""
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"expected a Z x Y x X volume, got shape {volume.shape}")
    kernel = kernel_size(volume.shape, patch_size)
    grid = grid_shape(volume.shape, patch_size, stride)
    depth, height, width = volume.shape
    first = np.empty((grid[0], height, width), dtype=np.float64)
    rows = max(1, _BLOCK_ELEMENTS // max(1, depth * width))
    for y0 in range(0, height, rows):
        block = volume[:, y0 : y0 + rows]
        first[:, y0 : y0 + rows] = _window_sums(block, 0, kernel[0], int(stride[0]), grid[0])
    second = _window_sums(first, 1, kernel[1], int(stride[1]), grid[1])
    del first
    return _window_sums(second, 2, kernel[2], int(stride[2]), grid[2])


def box_means(
    volumes: np.ndarray, patch_size: Sequence[int], stride: Sequence[int] = (1, 1, 1)
) -> np.ndarray:
    """Mean over the patch box at every grid start, per channel: (C x) Z x Y x X -> (C x) grid,
    float32. Accepts numpy arrays and torch tensors (moved to the CPU)."""
    if hasattr(volumes, "detach"):
        volumes = volumes.detach().cpu().numpy()
    volumes = np.asarray(volumes)
    if volumes.ndim == 3:
        return box_means(volumes[None], patch_size, stride)[0]
    if volumes.ndim != 4:
        raise ValueError(f"expected channels x Z x Y x X, got shape {volumes.shape}")
    shape = volumes.shape[1:]
    volume = float(np.prod(kernel_size(shape, patch_size)))
    out = np.empty((volumes.shape[0], *grid_shape(shape, patch_size, stride)), dtype=np.float32)
    for channel, values in enumerate(volumes):
        out[channel] = box_sums(values, patch_size, stride) / volume
    return out
