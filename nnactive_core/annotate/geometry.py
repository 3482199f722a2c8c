"""A case's image geometry (grid size, spacing, origin, direction) and the physical position of patch
boxes, so that files handed to annotators and files coming back can be checked against the case.

Shapes are numpy (z, y, x); spacing, origin and physical points are ITK (x, y, z), as viewers show them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from nnactive_core.patches.patch import Patch

TOLERANCE = 1e-4
"""Relative and absolute tolerance for spacing, origin and direction: NIfTI stores them as float32 and
viewers round-trip them through their own matrices."""


def _floats(value: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in value)


@attrs.frozen(kw_only=True)
class Geometry:
    shape: tuple[int, int, int] = attrs.field(converter=lambda v: tuple(int(s) for s in v))
    """(z, y, x) voxels."""
    spacing: tuple[float, ...] = attrs.field(converter=_floats)
    origin: tuple[float, ...] = attrs.field(converter=_floats)
    direction: tuple[float, ...] = attrs.field(converter=_floats)
    """Row-major 3 x 3 matrix, as ITK gives it."""

    @classmethod
    def of_image(cls, image) -> Geometry:
        """From a SimpleITK image or an ``ImageFileReader`` that has read the header."""
        return cls(
            shape=tuple(reversed(image.GetSize())),
            spacing=image.GetSpacing(),
            origin=image.GetOrigin(),
            direction=image.GetDirection(),
        )

    @classmethod
    def of_file(cls, path: Path) -> Geometry:
        """From the header only; errors name the file."""
        from nnactive_core.datasets.raw_format import read_image_information

        return cls.of_image(read_image_information(path))

    def apply(self, image) -> None:
        """Give a SimpleITK image made from an array of ``shape`` this geometry."""
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)

    def differences(self, other: Geometry, reference: str = "the case") -> list[str]:
        """One sentence per differing property of ``other``; empty when they agree within tolerance."""
        found = []
        if len(other.shape) != 3:
            return [f"{len(other.shape)}-D image; the case is 3-D"]
        if other.shape != self.shape:
            found.append(f"size (z, y, x) {other.shape} differs from {self.shape} of {reference}")
        for name in ("spacing", "origin", "direction"):
            mine, theirs = np.array(getattr(self, name)), np.array(getattr(other, name))
            if mine.shape != theirs.shape or not np.allclose(theirs, mine, rtol=TOLERANCE, atol=TOLERANCE):
                shown = tuple(np.round(theirs, 6).tolist())
                wanted = tuple(np.round(mine, 6).tolist())
                found.append(f"{name} {shown} differs from {wanted} of {reference}")
        return found

    def physical_point(self, index_zyx: Sequence[float]) -> tuple[float, float, float]:
        """World (x, y, z) of a continuous voxel index given in (z, y, x)."""
        index_xyz = np.array(list(reversed([float(v) for v in index_zyx])))
        direction = np.array(self.direction).reshape(3, 3)
        point = np.array(self.origin) + direction @ (np.array(self.spacing) * index_xyz)
        return tuple(round(float(v), 6) for v in point)  # type: ignore[return-value]

    def box_record(self, patch: Patch) -> dict:
        """A patch in voxels (z, y, x) and in world coordinates (x, y, z): the centres of its first
        and last voxel, and its outer corners (voxel edges), the box a viewer draws."""
        last = [b - 1 for b in patch.stop]
        return {
            "start": list(patch.start),
            "size": list(patch.size),
            "stop": list(patch.stop),
            "physical": {
                "axes": "x, y, z (world coordinates of the image header)",
                "first_voxel_centre": list(self.physical_point(patch.start)),
                "last_voxel_centre": list(self.physical_point(last)),
                "lower_corner": list(self.physical_point([a - 0.5 for a in patch.start])),
                "upper_corner": list(self.physical_point([b - 0.5 for b in patch.stop])),
            },
        }

    def to_json(self) -> dict:
        return {
            "shape": list(self.shape),
            "spacing": list(self.spacing),
            "origin": list(self.origin),
            "direction": list(self.direction),
        }


def region_mask(shape: Sequence[int], patches: Sequence[Patch]) -> np.ndarray:
    """Boolean (z, y, x) union of ``patches``."""
    mask = np.zeros(tuple(shape), dtype=bool)
    for patch in patches:
        mask[patch.slices] = True
    return mask


def write_image(array: np.ndarray, geometry: Geometry, path: Path) -> None:
    """Write ``array`` with ``geometry`` atomically, compressed; the format follows the file ending."""
    import SimpleITK as sitk

    from nnactive_core.io import atomic_write_with

    if tuple(array.shape) != geometry.shape:
        raise ValueError(f"{path}: array of shape {array.shape} does not match the case {geometry.shape}")
    image = sitk.GetImageFromArray(array)
    geometry.apply(image)
    suffix = "".join(Path(path).suffixes[-2:]) if str(path).endswith(".nii.gz") else Path(path).suffix
    atomic_write_with(Path(path), lambda tmp: sitk.WriteImage(image, str(tmp), True), suffix=suffix)
