"""What each placed patch was drawn for: kept beside the patch so tests and logs can tell foreground-
centred draws from uniform ones without re-deriving it from the ground truth."""

from __future__ import annotations

import attrs

from nnactive_core.patches.patch import Patch

ALL = "all"
"""Uniform position."""
SEG = "seg"
"""Centred on a uniform voxel of a foreground label."""
BORDER = "border"
"""Centred on a uniform voxel of a foreground label's inner border."""
COVER = "cover"
"""Class-covering phase: centred on a uniform voxel of the label (background included)."""
AREA_MODES = (ALL, SEG, BORDER)
FOREGROUND_MODES = frozenset({SEG, BORDER})


@attrs.frozen(kw_only=True)
class Draw:
    """One placed patch, the case it lies on, the mode it was drawn in and, except for ``all``, the
    label it was centred on."""

    patch: Patch
    case: str
    mode: str
    label: int | None = None
