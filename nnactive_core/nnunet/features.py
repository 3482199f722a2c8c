"""Encoder features of the sliding-window prediction as a low-resolution map on the raw image grid.

A forward hook on the second-to-last encoder stage receives one feature tile per sliding-window step
(only the un-mirrored forward pass of a step is used, so test-time mirroring is allowed). Tiles are
averaged into a map with one cell per ``factor`` voxels of the preprocessed image, then mapped to the
raw grid by nearest neighbour through nnU-Net's transpose, crop and resampling. Cells no tile covered, and
cells outside nnU-Net's crop, are NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np
import torch


@attrs.frozen(kw_only=True)
class FeatureMap:
    """``values``: (members x F) x z' x y' x x' float32, member-major; one cell per ``factor`` raw voxels
    (z, y, x); NaN where nothing was seen."""

    values: np.ndarray
    factor: tuple[int, int, int]
    members: int


def hooked_stage(network: torch.nn.Module) -> tuple[torch.nn.Module, tuple[int, ...]]:
    """The second-to-last encoder stage of an nnU-Net U-Net and its downsampling factor per axis."""
    encoder = getattr(network, "encoder", None)
    stages = getattr(encoder, "stages", None)
    strides = getattr(encoder, "strides", None)
    if stages is None or strides is None or len(stages) < 2:
        raise ValueError(
            f"feature capture needs a U-Net with at least two encoder stages, got {type(network).__name__}"
        )
    factor = np.prod(np.array([np.broadcast_to(s, (3,)) for s in strides[:-1]], dtype=int), axis=0)
    return stages[-2], tuple(int(f) for f in factor)


class TileFeatureAccumulator:
    """Averages per-tile features into a map over one preprocessed (unpadded) image."""

    def __init__(self, image_shape: Sequence[int], padded_shape: Sequence[int], factor: Sequence[int]):
        self.factor = np.array(factor)
        self.offset = (np.array(padded_shape) - np.array(image_shape)) // 2
        self.grid = tuple(int(g) for g in np.ceil(np.array(image_shape) / self.factor))
        self.sums: np.ndarray | None = None
        self.counts = np.zeros(self.grid, dtype=np.float32)

    def add(self, features: torch.Tensor, tile: Sequence[slice]) -> None:
        """``features``: F x z x y x x of the tile whose slicer (padded coordinates) is ``tile``. Every
        cell the tile overlaps gets the feature vector nearest to the cell's centre."""
        values = features.detach().float().cpu().numpy()
        if self.sums is None:
            self.sums = np.zeros((values.shape[0], *self.grid), dtype=np.float32)
        target, picks = [], []
        for axis in range(3):
            f = int(self.factor[axis])
            start = tile[axis].start - self.offset[axis]
            stop = tile[axis].stop - self.offset[axis]
            low, high = max(start // f, 0), min(-(-stop // f), self.grid[axis])
            if high <= low:
                return
            cells = np.arange(low, high)
            picks.append(np.clip((cells * f + f // 2 - start) // f, 0, values.shape[axis + 1] - 1))
            target.append(slice(low, high))
        self.sums[(slice(None), *target)] += values[:, picks[0]][:, :, picks[1]][:, :, :, picks[2]]
        self.counts[tuple(target)] += 1

    def mean(self) -> np.ndarray:
        if self.sums is None:
            raise RuntimeError("no feature tile was captured")
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.sums / self.counts
        mean[:, self.counts == 0] = np.nan
        return mean


def to_raw_grid(
    feature_map: np.ndarray,
    factor: Sequence[int],
    preprocessed_shape: Sequence[int],
    properties: dict,
    transpose_backward: Sequence[int],
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Map a feature map on the preprocessed grid (image of ``preprocessed_shape``) to the raw grid in
    array order, nearest neighbour, using nnU-Net's case ``properties`` (crop box, shapes).

    Returns the map (F x raw cells) and the factor in raw array order."""
    raw_shape = np.array(properties["shape_before_cropping"])
    bbox = np.array(properties["bbox_used_for_cropping"])
    cropped = np.array(properties["shape_after_cropping_and_before_resampling"])
    grid = feature_map.shape[1:]
    indices, valid = [], []
    for axis in range(3):
        cells = int(np.ceil(raw_shape[axis] / factor[axis]))
        starts = np.arange(cells) * factor[axis]
        low, high = bbox[axis][0], bbox[axis][0] + cropped[axis]
        # a cell is seen when it overlaps the crop; it samples at its centre moved into the crop
        ok = (starts < high) & (starts + factor[axis] > low)
        inside = np.clip(starts + (factor[axis] - 1) / 2, low, high - 1) - low
        # the preprocessed image may be resampled: scale crop coordinates to its size
        scale = preprocessed_shape[axis] / cropped[axis]
        index = np.clip(np.floor(inside * scale / factor[axis]).astype(int), 0, grid[axis] - 1)
        indices.append(index)
        valid.append(ok)
    mapped = feature_map[:, indices[0]][:, :, indices[1]][:, :, :, indices[2]]
    outside = ~(valid[0][:, None, None] & valid[1][None, :, None] & valid[2][None, None, :])
    mapped[:, outside] = np.nan
    order = [0, *[axis + 1 for axis in transpose_backward]]
    raw_factor = tuple(int(factor[axis]) for axis in transpose_backward)
    return np.ascontiguousarray(mapped.transpose(order)), raw_factor  # type: ignore[return-value]
