import numpy as np
import pandas as pd
import pytest

from nnactive_core.analysis.ppm import PairwisePenaltyMatrix, holm_adjust, paired_p_value

VALUES = (0.8, 0.9, 0.85)


def _reference_table():
    rows = []
    for budget in (10, 20, 30):
        for seed, value in enumerate(VALUES):
            rows.append(("alg1", seed, budget, value))
            rows.append(("alg2", seed, budget, value))
            rows.append(("win_alg", seed, budget, value + 0.2))
    return pd.DataFrame(rows, columns=["strategy", "seed", "budget_patches", "dice_mean"])


def test_reference_case():
    ppm = PairwisePenaltyMatrix.compute(_reference_table())
    assert ppm.entry("alg1", "win_alg") == pytest.approx(1.0)
    assert ppm.entry("alg2", "win_alg") == pytest.approx(1.0)
    assert ppm.entry("alg1", "alg2") == 0
    assert ppm.entry("alg2", "alg1") == 0
    assert ppm.entry("win_alg", "alg1") == 0


def test_save_load_round_trip(tmp_path):
    ppm = PairwisePenaltyMatrix.compute(_reference_table(), alpha=0.01)
    ppm.save(tmp_path / "ppm.json")
    loaded = PairwisePenaltyMatrix.load(tmp_path / "ppm.json")
    assert loaded.methods == ppm.methods
    np.testing.assert_array_equal(loaded.matrix, ppm.matrix)
    assert (loaded.alpha, loaded.holm, loaded.settings) == (0.01, False, 1)


def test_merging_three_times_triples_entries():
    ppm = PairwisePenaltyMatrix.compute(_reference_table())
    merged = ppm.merge(ppm, ppm)
    np.testing.assert_allclose(merged.matrix, 3 * ppm.matrix)
    assert merged.settings == 3
    assert merged.to_frame().loc["alg1", "win_alg"] == pytest.approx(1.0), "normalised by settings"


def test_pairs_by_seed_not_row_order():
    # b is better than a by 0.01 in every seed, but the seeds' levels differ a lot: pairing by row
    # order after shuffling b's rows would mix seeds and hide the effect.
    levels = {0: 0.2, 1: 0.5, 2: 0.8, 3: 0.35}
    rows = [("a", seed, 10, level) for seed, level in levels.items()]
    rows += [("b", seed, 10, level + 0.01 + 0.001 * seed) for seed, level in reversed(levels.items())]
    table = pd.DataFrame(rows, columns=["strategy", "seed", "budget_patches", "dice_mean"])
    ppm = PairwisePenaltyMatrix.compute(table)
    assert ppm.entry("a", "b") == 1.0 and ppm.entry("b", "a") == 0.0


def test_only_shared_seeds_are_paired_and_at_least_two_needed():
    rows = [("a", 1, 10, 0.5), ("a", 2, 10, 0.6), ("b", 2, 10, 0.9), ("b", 3, 10, 0.9)]
    table = pd.DataFrame(rows, columns=["strategy", "seed", "budget_patches", "dice_mean"])
    assert PairwisePenaltyMatrix.compute(table).matrix.sum() == 0


def test_holm_correction_can_remove_significance():
    # differences 0.03, 0.04, 0.05 per budget: t = 6.93 with 2 df, p = 0.020 < 0.05 at each of the four
    # budgets; Holm multiplies the smallest of the four p-values by 4, so nothing stays significant
    rows = []
    for budget in (10, 20, 30, 40):
        for seed, difference in enumerate((0.03, 0.04, 0.05)):
            rows += [("a", seed, budget, 0.5), ("b", seed, budget, 0.5 + difference)]
    table = pd.DataFrame(rows, columns=["strategy", "seed", "budget_patches", "dice_mean"])
    plain = PairwisePenaltyMatrix.compute(table)
    corrected = PairwisePenaltyMatrix.compute(table, holm=True)
    assert plain.entry("a", "b") == pytest.approx(1.0)
    assert corrected.entry("a", "b") == 0.0
    assert corrected.holm and not plain.holm
    with pytest.raises(ValueError, match="Holm"):
        plain.merge(corrected)


def test_helpers():
    assert paired_p_value([0.0, 0.0, 0.0]) == 1.0
    assert paired_p_value([0.1, 0.1]) == 0.0
    from scipy.stats import ttest_1samp

    z = [0.1, 0.3, -0.05, 0.2]
    assert paired_p_value(z) == pytest.approx(ttest_1samp(z, 0).pvalue)
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_frame_orientation_and_means():
    ppm = PairwisePenaltyMatrix(methods=["a", "b", "c"], matrix=[[0, 1, 0.5], [0, 0, 0], [0, 0.5, 0]])
    frame = ppm.to_frame(names={"a": "A"})
    assert frame.loc["A", "b"] == 1.0
    assert np.isnan(frame.loc["b", "b"])
    assert frame.loc["A", "mean"] == pytest.approx(0.75), "row a loses on average"
    assert frame.loc["mean", "b"] == pytest.approx(0.75), "column b wins on average"
