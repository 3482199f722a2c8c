"""The shipped strategies pick what the previous implementation picked on the same probabilities.

``picks_before.json`` holds the picks of the torch-only implementation (commit 0fd2ae8, before the
numpy scoring path existed), made with ``python tests/test_picks_unchanged.py --record FILE`` from this
plugin's folder on that checkout. The stacks are seeded numpy draws (float16 and float32, exact 0 and 1
and a slight spline overshoot below 0 and above 1 included), so the file pins the selection whatever
path the engine takes: numpy on the CPU, or torch (the path CUDA uses) when forced.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from nnactive_core.patches.patch import Patch
from nnactive_core.plugins import registry
from nnactive_core.query.engine import CaseInput, run_score_query
from nnactive_core.strategies.api import QueryContext

RECORDED = Path(__file__).with_name("picks_before.json")
STRATEGIES = ("pred_entropy", "mutual_information", "power_bald", "class_power_pe66_exp", "kmeans_bald")
SHAPES = ((20, 24, 28), (17, 30, 22), (26, 19, 21), (21, 21, 21))
SETTINGS = (
    {"dtype": "float16", "members": 5, "stride": (1, 1, 1), "loop": 1},
    {"dtype": "float32", "members": 3, "stride": (2, 1, 3), "loop": 3},
)


def stack(seed: int, shape, members: int, dtype: str) -> np.ndarray:
    """members x 3 x shape: softmax of blocky random logits (so patch means are not all alike), with
    some voxels pushed to exact 0 / 1 and a few a little outside [0, 1], as resampled probabilities are."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(members, 3, *(-(-s // 4) for s in shape))) * 2.0
    logits = coarse.repeat(4, 2).repeat(4, 3).repeat(4, 4)[:, :, : shape[0], : shape[1], : shape[2]]
    logits = logits + rng.normal(size=logits.shape)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    certain = rng.random(shape) < 0.05
    probs[:, :, certain] = 0.0
    probs[:, 0, certain] = 1.0
    overshoot = rng.random(shape) < 0.01
    probs[:, 1, overshoot] = -0.01
    probs[:, 2, overshoot] = 1.02
    return probs.astype(dtype)


def features(seed: int, shape) -> tuple[np.ndarray, tuple[int, int, int]]:
    rng = np.random.default_rng(seed + 1000)
    low = tuple(-(-s // 4) for s in shape)
    return rng.normal(size=(6, *low)).astype(np.float32), (4, 4, 4)


def run(name: str, setting: dict, backend: str | None = None) -> dict:
    strategy = registry().get("strategy", name)
    if backend == "torch":
        strategy = TorchOnly(strategy)
    ctx = QueryContext(
        patch_size=(6, 7, 5),
        stride=setting["stride"],
        query_size=6,
        patches_per_case=4,
        seed=7,
        loop=setting["loop"],
        query_steps=4,
        label_values=(0, 1, 2),
        annotated=(Patch(file="case_1.nii.gz", start=(3, 4, 5), size=(6, 7, 5)),),
    )
    cases = []
    for index, shape in enumerate(SHAPES):
        probs = stack(index, shape, setting["members"], setting["dtype"])
        feature_map = features(index, shape)
        cases.append(
            CaseInput(
                file=f"case_{index}.nii.gz",
                shape=shape,
                load_probabilities=lambda p=probs: p,
                load_features=lambda f=feature_map: f,
            )
        )
    result = run_score_query(strategy, cases, ctx)
    table = result.candidates
    rows = [
        [table.cases[table.case_index[r]], *map(int, table.start[r]), int(table.pool[r])]
        for r in range(len(table))
    ]
    return {"candidates": rows, "chosen": [int(r) for r in result.chosen]}


class TorchOnly:
    """A shipped strategy seen as a plugin that takes torch tensors only: the engine's torch path."""

    accepts_numpy = False

    def __init__(self, strategy):
        self._strategy = strategy

    def __getattr__(self, name):
        return getattr(self._strategy, name)


def recorded() -> dict:
    return json.loads(RECORDED.read_text())


@pytest.mark.parametrize("setting", range(len(SETTINGS)))
@pytest.mark.parametrize("name", STRATEGIES)
def test_same_picks_as_before_on_the_numpy_path(name, setting):
    assert run(name, SETTINGS[setting]) == recorded()[name][setting]


@pytest.mark.parametrize("setting", range(len(SETTINGS)))
@pytest.mark.parametrize("name", STRATEGIES)
def test_same_picks_as_before_on_the_torch_path(name, setting):
    pytest.importorskip("torch")
    assert run(name, SETTINGS[setting], backend="torch") == recorded()[name][setting]


if __name__ == "__main__":
    if sys.argv[1:2] != ["--record"] or len(sys.argv) != 3:
        raise SystemExit("usage: python test_picks_unchanged.py --record FILE")
    table = {name: [run(name, setting) for setting in SETTINGS] for name in STRATEGIES}
    Path(sys.argv[2]).write_text(json.dumps(table, separators=(",", ":")) + "\n")
