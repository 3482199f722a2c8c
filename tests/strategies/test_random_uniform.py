from collections import Counter

import numpy as np
import pytest

from nnactive_core.patches.patch import Patch
from nnactive_core.query.engine import run_placement_query
from nnactive_core.strategies.placement import PlacementError
from nnactive_core.strategies.random_uniform import UniformRandom
from nnactive_core.testing.contract import StrategyContract
from nnactive_core.testing.synthetic import SyntheticDataset, make_query_context


class TestContract(StrategyContract):
    strategy_names = ["random"]


def _pool(cases=6, shape=(16, 16, 16)):
    return SyntheticDataset({f"case_{i:03d}": np.zeros(shape, np.uint8) for i in range(cases)})


def _run(dataset, **overrides):
    return run_placement_query(UniformRandom(), dataset, make_query_context(dataset, **overrides)).patches


def test_exact_query_size_inside_cases_without_overlap():
    dataset = _pool()
    annotated = tuple(Patch(file=f"case_00{i}.nii.gz", start=(4, 4, 4), size=(8, 8, 8)) for i in range(3))
    patches = _run(dataset, query_size=40, patch_size=4, annotated=annotated)
    assert len(patches) == 40
    for i, patch in enumerate(patches):
        assert patch.fits_in((16, 16, 16)) and patch.size == (4, 4, 4)
        assert not any(patch.intersects(other) for other in patches[i + 1 :] + list(annotated))


def test_round_robin_puts_at_most_one_patch_per_case_when_query_fits_the_pool():
    dataset = _pool(cases=10)
    patches = _run(dataset, query_size=10, patch_size=4)
    assert sorted(p.file for p in patches) == [f"case_{i:03d}.nii.gz" for i in range(10)]
    counts = Counter(p.file for p in _run(dataset, query_size=25, patch_size=4))
    assert set(counts.values()) == {2, 3}


def test_same_seed_same_patches_other_seed_other_patches():
    dataset = _pool()
    first = _run(dataset, query_size=12, seed=5)
    assert _run(dataset, query_size=12, seed=5) == first
    assert _run(dataset, query_size=12, seed=6) != first
    assert _run(dataset, query_size=12, seed=5, loop=2) != first


def test_positions_exclude_the_last_valid_start_as_published():
    # as published: starts uniform over 0 .. D - p - 1; 10 - 4 = 6 is never drawn
    dataset = _pool(cases=1, shape=(10, 10, 10))
    starts = set()
    for seed in range(300):
        starts.update(_run(dataset, query_size=1, patch_size=4, seed=seed)[0].start)
    assert starts == set(range(6))


def test_include_last_start_is_an_option():
    dataset = _pool(cases=1, shape=(10, 10, 10))
    strategy = UniformRandom(name="random-full-range", include_last_start=True)
    starts = set()
    for seed in range(300):
        ctx = make_query_context(dataset, query_size=1, patch_size=4, seed=seed)
        starts.update(run_placement_query(strategy, dataset, ctx).patches[0].start)
    assert starts == set(range(7))
    assert UniformRandom().include_last_start is False


def test_case_smaller_than_patch_gives_the_whole_case_axis():
    dataset = SyntheticDataset({"small": np.zeros((3, 20, 5), np.uint8)})
    patches = _run(dataset, query_size=2, patch_size=(8, 8, 8))
    assert all(p.size == (3, 8, 5) and p.start[0] == 0 and p.start[2] == 0 for p in patches)


def test_full_case_is_dropped_and_the_others_are_used():
    dataset = SyntheticDataset(
        {"full": np.zeros((4, 4, 4), np.uint8), "room": np.zeros((16, 16, 16), np.uint8)}
    )
    annotated = (Patch(file="full.nii.gz", start=(0, 0, 0), size=(4, 4, 4)),)
    patches = _run(dataset, query_size=6, patch_size=4, annotated=annotated)
    assert {p.file for p in patches} == {"room.nii.gz"}


@pytest.mark.timeout(30)
def test_pool_without_room_fails_naming_how_many_were_placed():
    dataset = _pool(cases=2, shape=(8, 8, 8))
    ctx = make_query_context(dataset, query_size=5, patch_size=8)
    with pytest.raises(PlacementError, match="random: placed only 2 of 5 patches"):
        UniformRandom().place(dataset, ctx)


def test_starting_budget_draws_more_trials_per_case():
    # slabs at z = 4, y = 4 and x = 4 meet every 4^3 box but the one at the origin: 1 of the 64 starts
    # drawn (0 .. 3 per axis) is free
    slabs = [((4, 0, 0), (1, 8, 8)), ((0, 4, 0), (8, 1, 8)), ((0, 0, 4), (8, 8, 1))]
    annotated = tuple(Patch(file="case_000.nii.gz", start=a, size=s) for a, s in slabs)
    dataset = _pool(cases=1, shape=(8, 8, 8))
    strategy = UniformRandom(trials_per_case=1, starting_trials_per_case=3000)
    starting = make_query_context(dataset, query_size=1, patch_size=4, loop=0, annotated=annotated)
    assert strategy.place(dataset, starting) == [
        Patch(file="case_000.nii.gz", start=(0, 0, 0), size=(4, 4, 4))
    ]
    later = make_query_context(dataset, query_size=1, patch_size=4, loop=1, annotated=annotated)
    with pytest.raises(PlacementError, match="after 1 draws per case"):
        strategy.place(dataset, later)


def test_empty_pool_is_named():
    dataset = SyntheticDataset({}, labels={"background": 0})
    with pytest.raises(PlacementError, match="placed only 0 of 2 .* no pool cases"):
        UniformRandom().place(dataset, make_query_context(dataset, query_size=2, label_values=(0,)))
    assert UniformRandom().place(dataset, make_query_context(dataset, query_size=0, label_values=(0,))) == []
