import numpy as np
import torch
from nnactive_least_confidence.plugin import LeastConfidence

from nnactive_core.testing.contract import StrategyContract


class TestContract(StrategyContract):
    strategy_names = ["least_confidence"]


def test_certain_voxels_score_zero_and_uniform_voxels_score_highest(query_context):
    probs = np.zeros((2, 3, 1, 1, 2), dtype=np.float32)
    probs[:, 0, ..., 0] = 1.0
    probs[:, :, ..., 1] = 1.0 / 3.0
    scores = LeastConfidence().voxel_scores(torch.from_numpy(probs), query_context())
    assert torch.allclose(scores[0, 0, 0], torch.tensor([0.0, 2.0 / 3.0]))
