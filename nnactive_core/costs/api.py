"""What a cost metric is: a measure of one annotated patch, summed per loop and cumulatively."""

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
