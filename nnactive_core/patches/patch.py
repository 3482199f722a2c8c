"""The ``Patch`` value and the ``loop_XXX.json`` files that hold each loop's newly annotated patches.

Coordinates index the numpy array SimpleITK returns for the case on the resampled grid, so the axis
order is (z, y, x). A patch covers the half-open box ``[start, start + size)`` on each axis.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from numbers import Integral
from pathlib import Path

import attrs

from nnactive_core.io import JsonFileError, atomic_write_text, read_json

LOOP_FILE_PATTERN = re.compile(r"^loop_(\d{3,})\.json$")


def int_triple(value: int | Sequence[int]) -> tuple[int, int, int]:
    """(z, y, x) integers from three values, or one value used on every axis."""
    if isinstance(value, Integral):
        return (int(value),) * 3
    values = tuple(int(v) for v in value)
    if len(values) != 3:
        raise ValueError(f"expected 3 values (z, y, x), got {len(values)}: {value!r}")
    return values  # type: ignore[return-value]


@attrs.frozen(kw_only=True)
class Patch:
    """An axis-aligned 3D box on one case. ``file`` is the label file name with its ending."""

    file: str
    start: tuple[int, int, int] = attrs.field(converter=int_triple)
    size: tuple[int, int, int] = attrs.field(converter=int_triple)

    def __attrs_post_init__(self) -> None:
        if any(s < 0 for s in self.start):
            raise ValueError(f"patch on {self.file!r}: negative start {self.start}")
        if any(s <= 0 for s in self.size):
            raise ValueError(f"patch on {self.file!r}: size must be positive, got {self.size}")

    @property
    def stop(self) -> tuple[int, int, int]:
        return tuple(a + b for a, b in zip(self.start, self.size, strict=True))  # type: ignore[return-value]

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        return tuple(slice(a, b) for a, b in zip(self.start, self.stop, strict=True))  # type: ignore[return-value]

    @property
    def volume(self) -> int:
        return self.size[0] * self.size[1] * self.size[2]

    def intersection_volume(self, other: Patch) -> int:
        if other.file != self.file:
            return 0
        volume = 1
        for a0, a1, b0, b1 in zip(self.start, self.stop, other.start, other.stop, strict=True):
            extent = min(a1, b1) - max(a0, b0)
            if extent <= 0:
                return 0
            volume *= extent
        return volume

    def intersects(self, other: Patch) -> bool:
        return self.intersection_volume(other) > 0

    def fits_in(self, shape: Sequence[int]) -> bool:
        return all(0 <= a and b <= s for a, b, s in zip(self.start, self.stop, shape, strict=True))

    def to_json(self) -> dict:
        """The established loop-file record: ``{"file", "coords", "size"}``."""
        return {"file": self.file, "coords": list(self.start), "size": list(self.size)}

    @classmethod
    def from_json(cls, record: dict, shape: Sequence[int] | None = None) -> Patch:
        """Read a loop-file record. ``size == "whole"`` needs the case ``shape``."""
        size = record["size"]
        if size == "whole":
            if shape is None:
                raise ValueError(
                    f"patch on {record.get('file')!r} has size 'whole': the case shape is needed"
                )
            size = shape
        return cls(file=record["file"], start=record["coords"], size=size)


def loop_file_name(loop: int) -> str:
    return f"loop_{loop:03d}.json"


def save_loop(folder: Path, loop: int, patches: Iterable[Patch], **extra) -> Path:
    """Write ``loop_XXX.json`` atomically. ``extra`` keys are stored beside ``patches``."""
    patches = list(patches)
    for patch in patches:
        if not isinstance(patch, Patch):
            raise TypeError(f"save_loop expects Patch objects, got {type(patch).__name__}")
    path = Path(folder) / loop_file_name(loop)
    payload = {"patches": [p.to_json() for p in patches], **extra}
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
    return path


def load_loop(path: Path) -> list[Patch]:
    path = Path(path)
    try:
        payload = read_json(path, expect=dict)
    except JsonFileError as error:
        raise ValueError(f"{path}: not a valid loop file: {error.reason}") from error
    try:
        return [Patch.from_json(record) for record in payload["patches"]]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a valid loop file: {error}") from error


def loop_files(folder: Path) -> list[tuple[int, Path]]:
    """``(loop index, path)`` of every loop file in ``folder``, sorted by index."""
    found = []
    for path in Path(folder).iterdir():
        match = LOOP_FILE_PATTERN.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def read_loop_files(folder: Path, up_to: int | None = None) -> list[list[Patch]]:
    """Patches per loop, loops ``0 .. up_to`` (all when None); the union is the annotated state."""
    return [load_loop(path) for index, path in loop_files(folder) if up_to is None or index <= up_to]
