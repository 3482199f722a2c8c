"""An annotation-time cost model: the seconds a person needs to label one 3-D patch.

Annotators of 3-D medical images contour the foreground slice by slice (axial slices, axis 0 of the
patch) and fill the rest as background. The model charges

- ``overhead_seconds`` per patch: navigating to it, adjusting the window, reviewing it at the end;
- a patch without foreground costs only that and ``empty_check_seconds`` per slice, a scroll through
  it to confirm there is nothing to draw;
- each slice that contains foreground: ``slice_seconds`` (starting the slice, picking the class), and
  per foreground class present ``boundary_seconds`` per boundary pixel: pixels of the class with a
  4-neighbour of another label inside the patch. The patch's own faces are not drawn: the box gives
  them.

Defaults and where they come from. No published study measures annotation time per patch and
boundary length in 3-D medical segmentation that we could find; the defaults are therefore
assumptions, chosen to land in the range people report for whole organs: annotating one abdominal
organ in a CT volume takes 30-60 minutes by hand (Qu et al., "AbdomenAtlas-8K", arXiv:2305.09666).
With the defaults, a liver-sized structure (~100 slices, ~400 boundary pixels per slice) takes
100 * (4 + 400 * 0.05) s = 40 minutes. Everything is a field of :class:`AnnotationTime`, so a plugin
can register a model fitted to its own annotators' timings under another name.

The same function prices an estimate: the model's most likely label map inside the patch (argmax of
the ensemble's mean probabilities) stands in for the labels it has not bought.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import numpy as np

from nnactive_core.costs.api import CostMetric
from nnactive_core.patches.patch import Patch

ANNOTATION_SECONDS = "annotation_seconds"


def boundary_pixels(mask: np.ndarray) -> np.ndarray:
    """Per slice (axis 0) of a boolean Z x Y x X mask, the pixels of the mask with a 4-neighbour
    inside the slice that is not in the mask."""
    edge = np.zeros_like(mask)
    edge[:, 1:, :] |= mask[:, 1:, :] & ~mask[:, :-1, :]
    edge[:, :-1, :] |= mask[:, :-1, :] & ~mask[:, 1:, :]
    edge[:, :, 1:] |= mask[:, :, 1:] & ~mask[:, :, :-1]
    edge[:, :, :-1] |= mask[:, :, :-1] & ~mask[:, :, 1:]
    return np.count_nonzero(edge, axis=(1, 2))


@attrs.frozen(kw_only=True)
class AnnotationTime(CostMetric):
    """Estimated seconds to annotate a patch (see the module documentation for the model)."""

    name: str = "annotation-seconds"
    description: str = "Estimated seconds to annotate a patch slice by slice (overhead, slices, boundary)."
    unit: str = "seconds"
    overhead_seconds: float = 10.0
    empty_check_seconds: float = 0.2
    slice_seconds: float = 4.0
    boundary_seconds: float = 0.05

    def seconds(self, labels: np.ndarray, foreground: tuple[int, ...]) -> float:
        """The model on a label map (Z x Y x X) with the given foreground values."""
        labels = np.asarray(labels)
        present = [value for value in foreground if np.any(labels == value)]
        if not present:
            return self.overhead_seconds + self.empty_check_seconds * labels.shape[0]
        any_foreground = np.isin(labels, present)
        slices = int(np.count_nonzero(any_foreground.any(axis=(1, 2))))
        boundary = sum(int(boundary_pixels(labels == value).sum()) for value in present)
        return self.overhead_seconds + self.slice_seconds * slices + self.boundary_seconds * boundary

    def measure(
        self, patch: Patch, labels_in_patch: np.ndarray, label_values: Mapping[str, int], background: int
    ) -> dict[str, float]:
        foreground = tuple(value for value in label_values.values() if value != background)
        return {ANNOTATION_SECONDS: self.seconds(labels_in_patch, foreground)}

    def estimate(self, patch: Patch, probabilities: np.ndarray | None) -> dict[str, float] | None:
        """The model on the argmax of ``probabilities``; channel 0 is the background (nnU-Net's
        background is label 0 and channels follow the sorted label values)."""
        if probabilities is None:
            return None
        predicted = np.argmax(probabilities, axis=0)
        return {ANNOTATION_SECONDS: self.seconds(predicted, tuple(range(1, probabilities.shape[0])))}
