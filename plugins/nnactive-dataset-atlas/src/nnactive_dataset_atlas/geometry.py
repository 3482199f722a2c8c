"""Hemisphere grids on the MNI152 template, mirroring, resampling by affine, tiles.

Both files lie in MNI space by their affines (SimpleITK reads them in LPS physical coordinates, where
the mid-sagittal plane is x = 0 and the left hemisphere has x > 0). A hemisphere grid is regular in
``u = |x|`` (lateral distance from the midline), y and z, with the given spacing, over the brain mask's
bounding box. The pooled hemisphere is sampled at ``x = sign * u``, the held-out one at
``x = -sign * u``: it is the mirror image of the other hemisphere on the same grid, so a model trained on
one side is validated on the other without a voxel in common. The first column lies one template voxel
off the midline, so linear interpolation never mixes the two sides.
"""

from __future__ import annotations

import attrs
import numpy as np

HEMISPHERES = ("left", "right")
_LPS_SIGN = {"left": 1.0, "right": -1.0}
"""In LPS coordinates the left hemisphere lies at x > 0."""


@attrs.frozen(kw_only=True)
class Grid:
    """A regular output grid: ``size`` (x, y, z) voxels, ``origin`` and ``direction`` as SimpleITK
    takes them, isotropic ``spacing`` in mm."""

    size: tuple[int, int, int]
    origin: tuple[float, float, float]
    spacing: float
    direction: tuple[float, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape (z, y, x)."""
        return tuple(reversed(self.size))  # type: ignore[return-value]

    def point(self, index_xyz) -> tuple[float, float, float]:
        """Physical point of a voxel index (x, y, z)."""
        matrix = np.asarray(self.direction, dtype=float).reshape(3, 3)
        offset = matrix @ (self.spacing * np.asarray(index_xyz, dtype=float))
        return tuple(float(o + d) for o, d in zip(self.origin, offset, strict=True))  # type: ignore[return-value]


def physical_points(image, mask: np.ndarray) -> np.ndarray:
    """(N, 3) physical points (x, y, z) of the voxels where the (z, y, x) ``mask`` is set."""
    index_zyx = np.argwhere(mask)
    index_xyz = index_zyx[:, ::-1].astype(float)
    matrix = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    scaled = index_xyz * np.asarray(image.GetSpacing(), dtype=float)
    return scaled @ matrix.T + np.asarray(image.GetOrigin(), dtype=float)


def hemisphere_grid(brain_points: np.ndarray, template, spacing: float, pooled: str) -> Grid:
    """The grid of ``pooled`` (``left`` or ``right``) covering the brain of both sides folded onto it."""
    sign = _LPS_SIGN[pooled]
    first = float(min(template.GetSpacing()))
    lateral = np.abs(brain_points[:, 0])
    lateral = lateral[lateral >= first]
    low = np.array([first, *brain_points[:, 1:].min(axis=0)])
    high = np.array([lateral.max(), *brain_points[:, 1:].max(axis=0)])
    size = tuple(int(n) for n in np.floor((high - low) / spacing + 1e-9).astype(int) + 1)
    return Grid(
        size=size,  # type: ignore[arg-type]
        origin=(sign * float(low[0]), float(low[1]), float(low[2])),
        spacing=float(spacing),
        direction=(sign, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    )


def mirror_transform():
    """x -> -x about the mid-sagittal plane."""
    import SimpleITK as sitk

    transform = sitk.AffineTransform(3)
    transform.SetMatrix((-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return transform


def resample(image, grid: Grid, mirrored: bool, interpolator, default: float = 0.0) -> np.ndarray:
    """``image`` sampled on ``grid`` (through the mirror when ``mirrored``) as a (z, y, x) float32 array."""
    import SimpleITK as sitk

    transform = mirror_transform() if mirrored else sitk.Transform(3, sitk.sitkIdentity)
    output = sitk.Resample(
        image,
        list(grid.size),
        transform,
        interpolator,
        list(grid.origin),
        [grid.spacing] * 3,
        list(grid.direction),
        float(default),
        sitk.sitkFloat32,
    )
    return sitk.GetArrayFromImage(output)


def resample_labels(labels, classes: int, grid: Grid, mirrored: bool) -> np.ndarray:
    """A class map resampled without nearest-neighbour jaggies: each class's indicator is interpolated
    linearly and every voxel takes the highest (ties: the lower class). Outside the map is background."""
    import SimpleITK as sitk

    array = sitk.GetArrayViewFromImage(labels)
    best = None
    result = np.zeros(grid.shape, dtype=np.uint8)
    for value in range(classes + 1):
        indicator = sitk.GetImageFromArray((array == value).astype(np.float32))
        indicator.CopyInformation(labels)
        share = resample(indicator, grid, mirrored, sitk.sitkLinear, default=1.0 if value == 0 else 0.0)
        if best is None:
            best = share
        else:
            wins = share > best
            result[wins] = value
            best = np.where(wins, share, best)
    return result


def tile_bounds(shape: tuple[int, ...], tile: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """Non-overlapping tiles covering ``shape`` (z, y, x): per axis ``ceil(n / t)`` parts of near-equal
    length (at most ``t``), in z, y, x order."""
    edges = []
    for n, t in zip(shape, tile, strict=True):
        parts = -(-n // t)
        edges.append([round(i * n / parts) for i in range(parts + 1)])
    bounds = []
    for z0, z1 in zip(edges[0][:-1], edges[0][1:], strict=True):
        for y0, y1 in zip(edges[1][:-1], edges[1][1:], strict=True):
            for x0, x1 in zip(edges[2][:-1], edges[2][1:], strict=True):
                bounds.append((slice(z0, z1), slice(y0, y1), slice(x0, x1)))
    return bounds
