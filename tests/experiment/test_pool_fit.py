"""Whether an experiment's patches fit its pool, checked before anything is trained."""

import pytest

from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.pool_fit import PoolFitError, capacity, query_fit

ATLAS_TILES = {f"left_{i:03d}": (34, 40, 48) for i in range(9)}
"""The brain-atlas pool: 4 non-overlapping patches of 20^3 per tile, 36 in all."""


def config(query_size: int, **changes) -> ExperimentConfig:
    fields = dict(
        dataset="Dataset950_BrainTissue",
        patch_size=(20, 20, 20),
        starting_budget_size=10,
        query_size=query_size,
        query_steps=3,
        strategy="pred_entropy",
    )
    return ExperimentConfig(**{**fields, **changes})


def test_capacity_counts_whole_patches_per_case():
    assert capacity(ATLAS_TILES, (20, 20, 20)) == 36
    assert capacity(ATLAS_TILES, (64, 20, 20)) == 9 * 4  # a patch larger than the case shrinks to it


def test_half_of_the_room_passes_more_warns_and_more_than_all_is_refused():
    assert query_fit(config(4), ATLAS_TILES) == []  # 10 + 2 x 4 = 18 of 36
    (warning,) = query_fit(config(8), ATLAS_TILES)  # 26 of 36: the run that later found only 6 free
    assert "annotates 26 patches of size 20x20x20, more than half of the 36" in warning
    with pytest.raises(PoolFitError, match="annotates 38 patches .* hold at most 36"):
        query_fit(config(14), ATLAS_TILES)
    assert query_fit(config(14, patch_overlap=0.5), ATLAS_TILES) == []  # overlapping patches always fit
