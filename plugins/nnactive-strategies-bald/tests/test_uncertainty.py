import numpy as np
import pytest
import torch

from nnactive_core.query.engine import CaseInput, run_score_query
from nnactive_core.testing import make_query_context
from nnactive_strategies_bald.measures import expected_entropy, mutual_information, predictive_entropy
from nnactive_strategies_bald.uncertainty import UncertaintyStrategy


@pytest.mark.parametrize(
    ("name", "function"),
    [
        ("pred_entropy", predictive_entropy),
        ("exp_entropy", expected_entropy),
        ("mutual_information", mutual_information),
    ],
)
def test_voxel_scores_are_one_pool_of_the_measure(make_probabilities, name, function):
    strategy = UncertaintyStrategy(name="test", description="test", measure=name)
    probs = torch.from_numpy(make_probabilities(shape=(3, 4, 5), dtype="float16"))
    scores = strategy.voxel_scores(probs, make_query_context())
    assert scores.shape == (1, 3, 4, 5) and scores.dtype == torch.float32
    torch.testing.assert_close(scores[0], function(probs))


def test_unknown_measure_is_rejected():
    with pytest.raises(ValueError, match="measure must be one of"):
        UncertaintyStrategy(name="test", description="test", measure="entropy")


def disagreement_case(file: str, corner: tuple[int, int, int]) -> CaseInput:
    """Two confident members that disagree only inside a 4^3 box at ``corner``."""
    probs = np.zeros((2, 2, 12, 12, 12), dtype=np.float32)
    probs[:, 0] = 0.95
    probs[:, 1] = 0.05
    box = tuple(slice(c, c + 4) for c in corner)
    probs[(1, 0, *box)] = 0.05
    probs[(1, 1, *box)] = 0.95
    return CaseInput(file=file, shape=(12, 12, 12), load_probabilities=lambda: probs)


def test_bald_queries_where_the_members_disagree():
    strategy = UncertaintyStrategy(name="test", description="test", measure="mutual_information")
    ctx = make_query_context(patch_size=(4, 4, 4), patches_per_case=1, query_size=2)
    cases = [disagreement_case("a.nii.gz", (2, 6, 0)), disagreement_case("b.nii.gz", (8, 0, 5))]
    result = run_score_query(strategy, cases, ctx)
    assert sorted((p.file, p.start) for p in result.patches) == [
        ("a.nii.gz", (2, 6, 0)),
        ("b.nii.gz", (8, 0, 5)),
    ]
