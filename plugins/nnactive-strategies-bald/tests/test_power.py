import numpy as np
import pytest
import torch

from nnactive_core.strategies.api import GLOBAL_POOL, CandidateTable
from nnactive_core.testing import make_query_context
from nnactive_strategies_bald.measures import mutual_information
from nnactive_strategies_bald.power import ConstantBeta, ExponentialBeta, PowerStrategy, SigmoidBeta

SCORES = np.array([0.5, 0.7, 0.85, 1.0])
DRAWS = 4000
# chi-square quantile 0.999 with 3 degrees of freedom: a correct sampler fails 1 seed in 1000
CHI2_3_999 = 16.27


def candidates(scores: np.ndarray) -> CandidateTable:
    count = len(scores)
    return CandidateTable(
        cases=tuple(f"case_{i}.nii.gz" for i in range(count)),
        case_index=np.arange(count),
        start=np.zeros((count, 3), dtype=np.int64),
        size=np.full((count, 3), 4, dtype=np.int64),
        score=np.asarray(scores, dtype=np.float64),
        pool=np.full(count, GLOBAL_POOL),
    )


def first_pick_counts(strategy: PowerStrategy, scores: np.ndarray, seed: int) -> np.ndarray:
    """How often each candidate is queried first over DRAWS seeded queries, through the strategy's
    perturb (on the patch-score grid) and compose (on the candidates with the perturbed scores)."""
    ctx = make_query_context(query_size=1)
    counts = np.zeros(len(scores), dtype=np.int64)
    for rng in (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(DRAWS)):
        noised = strategy.perturb(scores[None, :], ctx, rng)[0]
        counts[strategy.compose(candidates(noised), ctx, rng)[0]] += 1
    return counts


def chi_square(counts: np.ndarray, weights: np.ndarray) -> float:
    expected = counts.sum() * weights / weights.sum()
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("beta", [1.0, 5.0])
def test_selection_frequencies_follow_score_to_the_power_beta(beta):
    strategy = PowerStrategy(name="power_test", description="test", measure="mutual_information", beta=beta)
    counts = first_pick_counts(strategy, SCORES, seed=2024)
    assert chi_square(counts, SCORES**beta) < CHI2_3_999
    # the test has power: the same draws clearly contradict a sampler with another exponent
    assert chi_square(counts, SCORES ** (beta + 2.0)) > 5 * CHI2_3_999


def test_perturb_is_seeded_and_works_on_pool_grids():
    strategy = PowerStrategy(name="power_test", description="test", measure="pred_entropy", beta=1.0)
    ctx = make_query_context()
    grid = np.random.default_rng(0).uniform(0.0, 1.0, size=(1, 3, 4, 5))
    grid[0, 0, 0, 0] = 0.0
    first = strategy.perturb(grid, ctx, np.random.default_rng(3))
    assert first.shape == grid.shape and np.isfinite(first).all()
    np.testing.assert_array_equal(first, strategy.perturb(grid, ctx, np.random.default_rng(3)))
    assert not np.array_equal(first, strategy.perturb(grid, ctx, np.random.default_rng(4)))


def test_voxel_scores_are_the_measure(make_probabilities):
    strategy = PowerStrategy(name="power_test", description="test", measure="mutual_information", beta=5)
    probs = torch.from_numpy(make_probabilities(shape=(3, 4, 5)))
    torch.testing.assert_close(
        strategy.voxel_scores(probs, make_query_context()), mutual_information(probs)[None]
    )
    assert strategy.beta == ConstantBeta(beta=5.0)


def betas(schedule, steps: int = 5) -> list[float]:
    """β of each query of an experiment with ``steps`` loops (loop files 1 .. steps-1)."""
    return [schedule(make_query_context(loop=loop, query_steps=steps)) for loop in range(1, steps)]


def test_exponential_schedule_for_five_loops():
    np.testing.assert_allclose(betas(ExponentialBeta()), [1.0, 3.16227766, 10.0, 31.6227766], rtol=1e-6)


def test_sigmoid_schedules_start_at_one_and_rise():
    smooth = betas(SigmoidBeta(temperature=2.0))
    sharp = betas(SigmoidBeta(temperature=0.5))
    np.testing.assert_allclose([smooth[0], sharp[0]], [1.0, 1.0], atol=1e-3)
    assert smooth == sorted(smooth) and sharp == sorted(sharp)
    # the smooth curve is well under way at t = 1, the sharp one has barely moved
    np.testing.assert_allclose(smooth, sigmoid_reference(2.0)[:4], rtol=1e-9)
    np.testing.assert_allclose(sharp, sigmoid_reference(0.5)[:4], rtol=1e-9)
    assert 15 < smooth[1] < 16 and 1.2 < sharp[1] < 1.3


def sigmoid_reference(temperature: float, steps: int = 5) -> np.ndarray:
    """behaviour.md 8.6: u = linspace(-6, 6, steps), σ = 1 / (1 + e^(-u/T)),
    β = 1 + 99 (σ - min σ) / (max σ - min σ)."""
    sigma = 1.0 / (1.0 + np.exp(-np.linspace(-6.0, 6.0, steps) / temperature))
    return 1.0 + 99.0 * (sigma - sigma.min()) / (sigma.max() - sigma.min())


def test_schedule_stays_in_range_outside_the_experiment():
    schedule = ExponentialBeta()
    assert schedule(make_query_context(loop=0, query_steps=5)) == pytest.approx(1.0)
    assert schedule(make_query_context(loop=9, query_steps=5)) == pytest.approx(100.0)
    assert schedule(make_query_context(loop=1, query_steps=1)) == pytest.approx(1.0)


def test_non_positive_beta_is_rejected():
    with pytest.raises(ValueError, match="beta must be positive"):
        ConstantBeta(beta=0.0)
