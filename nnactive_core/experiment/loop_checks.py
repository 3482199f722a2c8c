"""Loop files checked when a run reads them, before any step: a loop file edited by hand, copied from
another experiment or damaged stops the run at once, naming the file and the entry, instead of after a
loop of training (or never, for a duplicated patch that would be counted twice in the budget).

Each entry must name a pool case of the experiment's dataset, lie inside that case, and overlap
neither another entry of its own loop file nor one of an earlier loop by more than ``patch_overlap``
of its volume (the rule the query engine applies); the same box twice is always refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.io import JsonFileError, read_json
from nnactive_core.patches.boxes import violates
from nnactive_core.patches.patch import Patch, loop_files

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset


class LoopFileError(ValueError):
    """A loop file that cannot be used; the message names the file and the entry."""


def _patch(record, dataset: Dataset, where: str, pool: set[str]) -> Patch:
    if not isinstance(record, dict) or "file" not in record:
        raise LoopFileError(f"{where}: expected a record {{file, coords, size}}, got {record!r}")
    file = record["file"]
    try:
        case = dataset.case_of_file(file)
    except (KeyError, ValueError, TypeError) as error:
        raise LoopFileError(f"{where}: {error.args[0] if error.args else error}") from None
    if case not in pool:
        raise LoopFileError(f"{where}: {file!r} is not a pool case (held-out cases are never annotated)")
    shape = dataset.shape(case)
    try:
        patch = Patch.from_json(record, shape=shape)
    except (KeyError, TypeError, ValueError) as error:
        raise LoopFileError(f"{where}: invalid record {record!r}: {error}") from None
    if not patch.fits_in(shape):
        raise LoopFileError(
            f"{where}: box {list(patch.start)}+{list(patch.size)} does not fit case {case!r} of shape "
            f"{list(shape)}"
        )
    return patch


def check_loop_files(raw: Path, dataset: Dataset, config: ExperimentConfig) -> list[list[Patch]]:
    """The patches of every loop file in ``raw``, loop 0 first, each checked against the pool and
    the loop files before it; raises :class:`LoopFileError` at the first bad entry."""
    if not Path(raw).is_dir():
        return []
    pool = set(dataset.pool_cases())
    accepted: dict[str, list[tuple[Patch, str]]] = {}
    loops = []
    for _, path in loop_files(raw):
        try:
            records = read_json(path, expect=dict).get("patches")
        except JsonFileError as error:
            raise LoopFileError(f"{path}: not a valid loop file: {error.reason}") from None
        if not isinstance(records, list):
            raise LoopFileError(f"{path}: not a valid loop file: 'patches' must be a list")
        patches = []
        for index, record in enumerate(records):
            where = f"{path} patch #{index}"
            patch = _patch(record, dataset, where, pool)
            earlier = accepted.setdefault(patch.file, [])
            for other, other_where in earlier:
                if other == patch:
                    raise LoopFileError(f"{where}: the same box as {other_where}; a patch is annotated once")
            hit = violates(patch, [other for other, _ in earlier], config.patch_overlap)
            if hit is not None:
                other_where = next(w for other, w in earlier if other is hit)
                raise LoopFileError(
                    f"{where}: box {list(patch.start)}+{list(patch.size)} overlaps {other_where} "
                    f"{list(hit.start)}+{list(hit.size)} by more than patch_overlap "
                    f"({config.patch_overlap:g} of its volume)"
                )
            earlier.append((patch, where))
            patches.append(patch)
        loops.append(patches)
    return loops
