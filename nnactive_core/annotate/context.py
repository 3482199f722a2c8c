"""The experiment as the annotation commands see it: its layout, config, base dataset (the pool images
and their geometry), its loop files and its current partial labels."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import attrs
import numpy as np

from nnactive_core.annotate.geometry import Geometry
from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import ExperimentLayout, Roots, find_experiment
from nnactive_core.experiment.oracle import label_dtype
from nnactive_core.experiment.state import SETUP, State, load_state
from nnactive_core.patches.patch import Patch, load_loop, loop_file_name, loop_files

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset
    from nnactive_core.plugins import Registry


class AnnotationError(ValueError):
    """Input that cannot be used. ``problems`` holds one line per violation, each naming its file."""

    def __init__(self, problems: str | Sequence[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            super().__init__(self.problems[0])
        else:
            super().__init__(f"{len(self.problems)} problems:\n" + "\n".join(self.problems))


@attrs.frozen(kw_only=True)
class ExperimentHandle:
    layout: ExperimentLayout
    config: ExperimentConfig
    dataset: Dataset

    @property
    def name(self) -> str:
        return self.layout.name

    def state(self) -> State:
        return load_state(self.layout.results)

    def loop_indices(self) -> list[int]:
        return [index for index, _ in loop_files(self.layout.raw)] if self.layout.raw.is_dir() else []

    def newest_loop(self) -> int:
        indices = self.loop_indices()
        if not indices:
            raise AnnotationError(f"{self.layout.raw}: experiment {self.name} has no loop files yet")
        return indices[-1]

    def loop_patches(self, loop: int) -> list[Patch]:
        path = self.layout.raw / loop_file_name(loop)
        if not path.is_file():
            known = ", ".join(str(i) for i in self.loop_indices()) or "none"
            raise AnnotationError(f"{path}: no such loop file (loops of {self.name}: {known})")
        try:
            return load_loop(path)
        except ValueError as error:
            raise AnnotationError(str(error)) from None

    def annotated_patches(self, up_to: int) -> list[Patch]:
        """Every patch of loops ``0 .. up_to``."""
        return [
            patch for index in self.loop_indices() if index <= up_to for patch in self.loop_patches(index)
        ]

    def case_of(self, patch_file: str) -> str:
        return self.dataset.case_of_file(patch_file)

    def label_file_name(self, case: str) -> str:
        return case + self.dataset.file_ending

    def patches_by_case(self, patches: Iterable[Patch]) -> dict[str, list[Patch]]:
        """Case -> its patches, cases sorted, patches in their loop-file order."""
        grouped: dict[str, list[Patch]] = {}
        for patch in patches:
            grouped.setdefault(self.case_of(patch.file), []).append(patch)
        return {case: grouped[case] for case in sorted(grouped)}

    def geometry(self, case: str) -> Geometry:
        """The case's grid: the header of its ground-truth label file, which the partial labels copy."""
        return Geometry.of_file(self.dataset.label_file(case))

    def partial_labels(self, case: str, geometry: Geometry | None = None) -> np.ndarray:
        """The experiment's current partial label map of ``case``; all ``ignore`` before the oracle or
        an import wrote one."""
        import SimpleITK as sitk

        from nnactive_core.datasets.raw_format import as_label_array, read_image

        path = self.layout.labels / self.label_file_name(case)
        if path.is_file():
            return as_label_array(sitk.GetArrayFromImage(read_image(path)), path)
        shape = (geometry or self.geometry(case)).shape
        return np.full(shape, self.dataset.ignore_label, dtype=label_dtype(self.dataset.ignore_label))

    def labels_used(self, loop: int, state: State | None = None) -> bool:
        """Whether the run already wrote loop ``loop``'s labels (its annotate step, or setup for loop 0):
        an import after that would not reach the experiment."""
        state = state or self.state()
        if loop == 0:
            return state.step != SETUP
        return state.loop >= loop


def open_experiment(roots: Roots, name: str, registry: Registry | None = None) -> ExperimentHandle:
    """The experiment called ``name`` under ``roots``, with its base dataset opened through its adapter."""
    from nnactive_core.experiment.setup import open_dataset
    from nnactive_core.plugins import registry as load_registry

    layout = find_experiment(roots, name)
    if layout is None:
        raise AnnotationError(f"no experiment named {name!r} under {roots.results} (nnActive_results)")
    config = ExperimentConfig.load(layout.results)
    dataset = open_dataset(config, roots, registry or load_registry())
    return ExperimentHandle(layout=layout, config=config, dataset=dataset)
