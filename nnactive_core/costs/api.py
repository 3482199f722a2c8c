"""What a cost metric is: a measure of one annotated patch, summed per loop and cumulatively, and
optionally an estimate of that measure from the model before the patch is annotated (what a budget
in the metric is filled with, see :mod:`nnactive_core.query.budget`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nnactive_core.patches.patch import Patch


class CostMetric:
    """Base class of cost metrics registered through ``nnactive_register_cost_metrics``."""

    name: str = ""
    description: str = ""
    unit: str = ""

    def measure(
        self, patch: Patch, labels_in_patch: np.ndarray, label_values: Mapping[str, int], background: int
    ) -> dict[str, float]:
        """Column name -> value for one patch. ``labels_in_patch`` is the ground truth inside the box."""
        raise NotImplementedError

    def estimate(self, patch: Patch, probabilities: np.ndarray | None) -> dict[str, float] | None:
        """Column name -> expected value for a patch not annotated yet, or None: no estimate (the
        default). ``probabilities`` are the model's class probabilities inside the patch (classes x
        Z x Y x X float32, the mean over the ensemble, channels in label-value order), or None where no
        model predicted it. Metrics whose value depends on the labels need it to serve as a budget
        metric for score strategies; it must never read labels."""
        return None
