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

import threading
from collections.abc import Sequence

import numpy as np

from nnactive_core.threads import thread_budget

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


class BoxWorkspace:
    """float64 scratch for :func:`box_sums`, kept between calls. Box sums need a few volume-sized
    float64 arrays per channel; allocated fresh every time they cost page faults, and, once the
    allocator serves them from its heap, they fragment it so a long pool creeps up in memory. One
    workspace per query allocates them once, at the size of the largest case."""

    def __init__(self):
        self._buffers: dict[str, np.ndarray] = {}
        self._lanes: list[BoxWorkspace] = []

    def lanes(self, count: int) -> list[BoxWorkspace]:
        """One workspace per worker thread (the first is this one), kept like the buffers."""
        while len(self._lanes) < count - 1:
            self._lanes.append(BoxWorkspace())
        return [self, *self._lanes[: count - 1]]

    def take(self, name: str, shape: Sequence[int]) -> np.ndarray:
        """A float64 array of ``shape`` (uninitialised) on the buffer ``name``, grown when too small."""
        size = int(np.prod(shape, dtype=np.int64))
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name] = np.empty(size, dtype=np.float64)
        return buffer[:size].reshape(tuple(shape))


def _along(axis: int, index) -> tuple:
    return (slice(None),) * axis + (index,)


def _prefix_sums(values: np.ndarray, axis: int, out: np.ndarray) -> np.ndarray:
    """Cumulative sums along ``axis`` in float64, into ``out``."""
    if axis == values.ndim - 1:
        return np.cumsum(values, axis=axis, dtype=np.float64, out=out)
    # numpy's cumsum along a leading axis is about 20x slower than adding whole slabs one by one
    source, target = np.moveaxis(values, axis, 0), np.moveaxis(out, axis, 0)
    target[0] = source[0]
    for index in range(1, len(source)):
        np.add(target[index - 1], source[index], out=target[index])
    return out


def _window_sums(
    values: np.ndarray, axis: int, kernel: int, stride: int, count: int, out: np.ndarray, scratch: np.ndarray
) -> np.ndarray:
    """Sums of ``kernel`` consecutive entries along ``axis`` starting at 0, stride, ..., in float64,
    into ``out`` (``count`` entries along ``axis``); ``scratch`` (``values``' shape) holds the prefix
    sums."""
    cumulative = _prefix_sums(values, axis, scratch)
    last = stride * (count - 1)
    out[_along(axis, 0)] = cumulative[_along(axis, kernel - 1)]
    if count > 1:
        np.subtract(
            cumulative[_along(axis, slice(kernel - 1 + stride, kernel + last, stride))],
            cumulative[_along(axis, slice(stride - 1, last, stride))],
            out=out[_along(axis, slice(1, None))],
        )
    return out


def box_sums(
    volume: np.ndarray,
    patch_size: Sequence[int],
    stride: Sequence[int] = (1, 1, 1),
    workspace: BoxWorkspace | None = None,
) -> np.ndarray:
    """Sum of ``volume`` (Z x Y x X) over the box at every grid start, float64 of shape ``grid_shape``
    (a view into ``workspace`` when one is given: valid until its next use)."""
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"expected a Z x Y x X volume, got shape {volume.shape}")
    workspace = BoxWorkspace() if workspace is None else workspace
    kernel = kernel_size(volume.shape, patch_size)
    grid = grid_shape(volume.shape, patch_size, stride)
    depth, height, width = volume.shape
    first = workspace.take("first", (grid[0], height, width))
    rows = max(1, _BLOCK_ELEMENTS // max(1, depth * width))
    for y0 in range(0, height, rows):
        block = volume[:, y0 : y0 + rows]
        scratch = workspace.take("prefix", block.shape)
        _window_sums(block, 0, kernel[0], int(stride[0]), grid[0], first[:, y0 : y0 + rows], scratch)
    second = workspace.take("second", (grid[0], grid[1], width))
    _window_sums(first, 1, kernel[1], int(stride[1]), grid[1], second, workspace.take("prefix", first.shape))
    third = workspace.take("third", grid)
    return _window_sums(
        second, 2, kernel[2], int(stride[2]), grid[2], third, workspace.take("prefix", second.shape)
    )


def box_means(
    volumes: np.ndarray,
    patch_size: Sequence[int],
    stride: Sequence[int] = (1, 1, 1),
    workspace: BoxWorkspace | None = None,
    threads: int | None = None,
) -> np.ndarray:
    """Mean over the patch box at every grid start, per channel: (C x) Z x Y x X -> (C x) grid,
    float32. Accepts numpy arrays and torch tensors (moved to the CPU). Channels are summed on up to
    ``threads`` threads at once (default: the thread budget), each in its own lane of ``workspace``;
    numpy releases the GIL inside the sums, and each channel's result is the same on any thread."""
    if hasattr(volumes, "detach"):
        volumes = volumes.detach().cpu().numpy()
    volumes = np.asarray(volumes)
    if volumes.ndim == 3:
        return box_means(volumes[None], patch_size, stride, workspace, threads)[0]
    if volumes.ndim != 4:
        raise ValueError(f"expected channels x Z x Y x X, got shape {volumes.shape}")
    shape = volumes.shape[1:]
    workspace = BoxWorkspace() if workspace is None else workspace
    volume = float(np.prod(kernel_size(shape, patch_size)))
    out = np.empty((volumes.shape[0], *grid_shape(shape, patch_size, stride)), dtype=np.float32)
    channels = len(volumes)
    workers = max(1, min(thread_budget() if threads is None else int(threads), channels))

    def mean_of(channel: int, lane: BoxWorkspace) -> None:
        sums = box_sums(volumes[channel], patch_size, stride, lane)
        np.divide(sums, volume, out=out[channel], casting="same_kind")

    failures: list[BaseException] = []
    lanes = workspace.lanes(workers)

    def work(lane: int) -> None:
        for channel in range(lane, channels, workers):
            try:
                mean_of(channel, lanes[lane])
            except BaseException as error:  # handed to the caller's thread below
                failures.append(error)
                return

    pool = [
        threading.Thread(target=work, args=(lane,), name=f"nnactive-box-{lane}") for lane in range(1, workers)
    ]
    for thread in pool:
        thread.start()
    work(0)
    for thread in pool:
        thread.join()
    if failures:
        raise failures[0]
    return out
