"""``nnactive annotate import-query``: patches drawn by a person become a loop's query.

Two inputs are accepted: a JSON loop file (``{"patches": [{"file", "coords", "size"}]}``, voxel
(z, y, x) on the case grid) or a folder of masks ``<case>.nii.gz`` (or ``.nrrd``) in the case's
geometry, where each connected component (26-connectivity) becomes the patch of its bounding box.
Every patch must lie inside a pool case and overlap neither an annotated patch (any loop) nor another
drawn patch. When the experiment waits at the query step of loop k, the patches are written as
``loop_{k+1}.json`` (with a ``query.json`` recording their origin) and the state moves on to annotate.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np

from nnactive_core.annotate.context import AnnotationError, ExperimentHandle
from nnactive_core.annotate.geometry import Geometry
from nnactive_core.annotate.manifest import LABEL_ENDINGS
from nnactive_core.experiment.layout import ExperimentLayout
from nnactive_core.experiment.lock import ExperimentLock
from nnactive_core.experiment.state import QUERY, save_state
from nnactive_core.io import JsonFileError, atomic_write_json, read_json
from nnactive_core.patches.patch import Patch, loop_file_name, save_loop

MANUAL_STRATEGY = "manual"


@attrs.frozen(kw_only=True)
class DrawnPatch:
    patch: Patch
    source: str
    """Where it came from, for messages: ``file.json patch #3`` or ``masks/case.nii.gz component 2``."""


def query_instructions(layout: ExperimentLayout, loop: int) -> str:
    """What the user does when loop ``loop``'s query waits for a person (for the runner's stop message)."""
    return (
        f"loop {loop} of {layout.name} waits for a person to pick the next patches: draw them as a JSON "
        f"loop file or as masks <case>.nii.gz, then `nnactive annotate import-query --experiment "
        f"{layout.name} --input PATH`, and `nnactive run` again"
    )


def _pool_case(handle: ExperimentHandle, file: str, source: str) -> tuple[str | None, str | None]:
    """The case of a patch's ``file``, or a problem naming ``source``."""
    try:
        case = handle.case_of(file)
    except (KeyError, ValueError) as error:
        return None, f"{source}: {error.args[0] if error.args else error}"
    if case not in handle.dataset.pool_cases():
        return None, f"{source}: case {case!r} is not in the pool (held-out cases are never annotated)"
    return case, None


def patches_from_json(handle: ExperimentHandle, path: Path) -> tuple[list[DrawnPatch], list[str]]:
    try:
        payload = read_json(Path(path))
    except JsonFileError as error:
        raise AnnotationError(str(error)) from None
    records = payload.get("patches") if isinstance(payload, dict) else None
    if not isinstance(records, list):
        raise AnnotationError(f"{path}: not a loop file {{'patches': [{{file, coords, size}}]}}")
    drawn, problems = [], []
    for index, record in enumerate(records):
        source = f"{path} patch #{index}"
        try:
            patch = Patch.from_json(record)
        except (KeyError, TypeError, ValueError) as error:
            problems.append(f"{source}: invalid record {record!r}: {error}")
            continue
        case, problem = _pool_case(handle, patch.file, source)
        if problem:
            problems.append(problem)
            continue
        drawn.append(DrawnPatch(patch=patch, source=f"{source} ({case})"))
    return drawn, problems


def patches_from_masks(handle: ExperimentHandle, folder: Path) -> tuple[list[DrawnPatch], list[str]]:
    import SimpleITK as sitk
    from scipy import ndimage

    from nnactive_core.datasets.raw_format import DatasetFileError, read_image

    drawn, problems = [], []
    for path in sorted(p for p in Path(folder).iterdir() if not p.name.startswith(".")):
        ending = next((e for e in LABEL_ENDINGS if path.name.endswith(e)), None)
        if ending is None or not path.is_file():
            problems.append(f"{path}: not a mask file (expected <case> with {', '.join(LABEL_ENDINGS)})")
            continue
        case, problem = _pool_case(handle, path.name[: -len(ending)] + handle.dataset.file_ending, str(path))
        if problem:
            problems.append(problem)
            continue
        try:
            image = read_image(path)
        except DatasetFileError as error:
            problems.append(f"{path}: {error.reason}")
            continue
        differences = handle.geometry(case).differences(Geometry.of_image(image))
        if differences:
            problems.extend(f"{path}: {d}" for d in differences)
            continue
        components, _ = ndimage.label(sitk.GetArrayFromImage(image) != 0, structure=np.ones((3, 3, 3)))
        for number, box in enumerate(ndimage.find_objects(components), start=1):
            patch = Patch(
                file=handle.label_file_name(case),
                start=[s.start for s in box],
                size=[s.stop - s.start for s in box],
            )
            drawn.append(DrawnPatch(patch=patch, source=f"{path} component {number} {patch.to_json()}"))
    return drawn, problems


def check_patches(handle: ExperimentHandle, drawn: list[DrawnPatch], annotated: list[Patch]) -> list[str]:
    """Problems of the drawn patches: outside their case, overlapping annotated or other drawn ones."""
    problems = []
    shapes: dict[str, tuple[int, int, int]] = {}
    for index, item in enumerate(drawn):
        patch = item.patch
        case = handle.case_of(patch.file)
        shape = shapes.setdefault(case, handle.dataset.shape(case))
        if not patch.fits_in(shape):
            problems.append(
                f"{item.source}: box {patch.start}+{patch.size} is outside case {case!r} of size {shape}"
            )
        hits = [other for other in annotated if patch.intersects(other)]
        if hits:
            shown = ", ".join(f"{h.start}+{h.size}" for h in hits[:3])
            problems.append(f"{item.source}: overlaps already annotated patch(es) {shown} of {case!r}")
        for other in drawn[:index]:
            if patch.intersects(other.patch):
                problems.append(f"{item.source}: overlaps {other.source}")
    return problems


def read_drawn(handle: ExperimentHandle, path: Path, annotated: list[Patch]) -> list[Patch]:
    """The validated patches of ``path`` (a JSON loop file or a folder of masks), sorted."""
    path = Path(path)
    if path.is_dir():
        drawn, problems = patches_from_masks(handle, path)
    elif path.is_file():
        drawn, problems = patches_from_json(handle, path)
    else:
        raise AnnotationError(f"{path}: no such file or folder")
    problems += check_patches(handle, drawn, annotated)
    if problems:
        raise AnnotationError(problems)
    if not drawn:
        raise AnnotationError(f"{path}: holds no patches")
    return sorted((item.patch for item in drawn), key=lambda p: (p.file, p.start, p.size))


def import_query(handle: ExperimentHandle, path: Path) -> tuple[int, list[Patch]]:
    """Write the drawn patches as the next loop file and move the state from query to annotate;
    returns the new loop index and its patches."""
    with ExperimentLock(handle.layout.results):
        state = handle.state()
        if state.step != QUERY:
            raise AnnotationError(
                f"{handle.layout.results}: experiment {handle.name} is at loop {state.loop}, step "
                f"{state.step!r}; drawn patches are imported at a query step (run `nnactive run` until it "
                "stops there)"
            )
        annotated = handle.annotated_patches(up_to=state.loop)
        patches = read_drawn(handle, path, annotated)
        new_loop = state.loop + 1
        atomic_write_json(
            handle.layout.query_file(state.loop),
            {
                "strategy": MANUAL_STRATEGY,
                "creates": loop_file_name(new_loop),
                "source": str(Path(path).absolute()),
                "candidates": [
                    {**patch.to_json(), "score": None, "pool": 0, "chosen": True} for patch in patches
                ],
            },
        )
        save_loop(handle.layout.raw, new_loop, patches)
        save_state(handle.layout.results, state.advance(handle.config.query_steps))
    return new_loop, patches
