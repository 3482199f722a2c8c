"""The strategy contract: subclass :class:`StrategyContract` in a plugin's tests and list the
strategies to check::

    from nnactive_core.testing.contract import StrategyContract

    class TestMyStrategies(StrategyContract):
        strategy_names = ["my_strategy"]

Every test runs once per name, against the strategy as the registry loaded it from the installed
plugin, through the core's patch engine, on tiny synthetic data.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from nnactive_core.patches.patch import Patch
from nnactive_core.strategies.api import PlacementStrategy, ScoreStrategy
from nnactive_core.testing.synthetic import SyntheticDataset, make_probabilities, make_query_context

CASE_SHAPE = (12, 14, 10)
CLASSES = 3
CASES = 6
QUERY_SIZE = 6


def _feature_loader(shape, seed):
    def load():
        rng = np.random.default_rng(seed)
        factor = (2, 2, 2)
        low = tuple(max(1, s // f) for s, f in zip(shape, factor, strict=True))
        return rng.normal(size=(4, *low)).astype(np.float32), factor

    return load


def _score_cases(strategy: ScoreStrategy, shapes, dtype="float32"):
    from nnactive_core.query.engine import CaseInput

    cases = []
    for index, shape in enumerate(shapes):
        probabilities = make_probabilities(members=3, classes=CLASSES, shape=shape, seed=index, dtype=dtype)
        cases.append(
            CaseInput(
                file=f"case_{index:03d}.nii.gz",
                shape=tuple(shape),
                load_probabilities=lambda p=probabilities: p,
                load_features=_feature_loader(shape, index) if strategy.requires_features else None,
            )
        )
    return cases


def _slab_labels(shape) -> np.ndarray:
    """Every class in every case (slabs along x), so class-covering strategies always have room."""
    columns = np.arange(shape[2]) * CLASSES // shape[2]
    return np.broadcast_to(columns, tuple(shape)).astype(np.uint8)


def _run(strategy, shapes=(CASE_SHAPE,) * CASES, dtype="float32", **context):
    from nnactive_core.query.engine import run_placement_query, run_score_query

    dataset = SyntheticDataset(
        {f"case_{i:03d}": _slab_labels(shape) for i, shape in enumerate(shapes)},
        labels={"background": 0, **{f"class_{v}": v for v in range(1, CLASSES)}},
    )
    ctx = make_query_context(dataset, query_size=QUERY_SIZE, **context)
    if isinstance(strategy, ScoreStrategy):
        return run_score_query(strategy, _score_cases(strategy, shapes, dtype), ctx, owner="contract-test")
    return run_placement_query(strategy, dataset, ctx, owner="contract-test")


class StrategyContract:
    """Checks every strategy in ``strategy_names`` obeys the contract of
    :mod:`nnactive_core.strategies.api`."""

    strategy_names: ClassVar[list[str]] = []

    @pytest.fixture
    def strategy(self, strategy_name):
        from nnactive_core.plugins import load_registry

        return load_registry().get("strategy", strategy_name)

    def test_registered_with_one_line_description(self, strategy, strategy_name):
        assert strategy.name == strategy_name
        assert strategy.description.strip() and "\n" not in strategy.description.strip()
        assert isinstance(strategy, ScoreStrategy | PlacementStrategy)

    def test_voxel_scores_shape_dtype_finite(self, strategy):
        if not isinstance(strategy, ScoreStrategy):
            pytest.skip("placement strategies have no voxel scores")
        import torch

        dataset = SyntheticDataset.generate(cases=1, shape=CASE_SHAPE, classes=CLASSES)
        ctx = make_query_context(dataset)
        for dtype in ("float32", "float16"):
            probabilities = torch.from_numpy(
                make_probabilities(classes=CLASSES, shape=CASE_SHAPE, dtype=dtype)
            )
            with torch.no_grad():
                scores = strategy.voxel_scores(probabilities, ctx)
            assert tuple(scores.shape) == (len(strategy.pools(ctx)), *CASE_SHAPE)
            assert scores.dtype == torch.float32
            assert torch.isfinite(scores).all()

    def test_query_returns_valid_patches(self, strategy):
        result = _run(strategy)
        assert len(result.patches) == QUERY_SIZE
        for patch in result.patches:
            assert isinstance(patch, Patch)
            assert patch.fits_in(CASE_SHAPE)
        for i, a in enumerate(result.patches):
            assert not any(a.intersects(b) for b in result.patches[i + 1 :])

    def test_respects_annotated_regions(self, strategy):
        annotated = (Patch(file="case_000.nii.gz", start=(0, 0, 0), size=(6, 6, 6)),)
        result = _run(strategy, annotated=annotated)
        assert not any(p.intersects(annotated[0]) for p in result.patches)

    def test_deterministic_under_seed(self, strategy):
        first = _run(strategy, seed=7)
        second = _run(strategy, seed=7)
        assert [p.to_json() for p in first.patches] == [p.to_json() for p in second.patches]

    def test_case_smaller_than_patch(self, strategy):
        shapes = ((4, 5, 3), (4, 5, 3), (5, 4, 6), (3, 3, 3), (6, 3, 4), (3, 6, 5))
        result = _run(strategy, shapes=shapes, patch_size=(8, 8, 8), patches_per_case=1)
        assert len(result.patches) == QUERY_SIZE
        for patch in result.patches:
            shape = shapes[int(patch.file[5:8])]
            assert patch.fits_in(shape)
