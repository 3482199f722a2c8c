"""The plugin's strategies through the command line: every one through ``nnactive score`` (with the
reference values of the established implementation), ClaSP PE through ``nnactive query``."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from nnactive_core.cli.main import cli
from nnactive_strategies_bald.plugin import all_strategies

LN2 = math.log(2.0)
QS = np.round(np.arange(0.0, 0.51, 0.1), 2)


def two_class(mirrored_rows) -> np.ndarray:
    stack = [np.stack([1.0 - QS, QS] if mirrored else [QS, 1.0 - QS]) for mirrored in mirrored_rows]
    return np.asarray(stack, dtype=np.float32)[:, :, None, None, :]


def score(tmp_path, strategy: str, probabilities: np.ndarray, *options: str) -> np.ndarray:
    probs = tmp_path / "case.npy"
    out = tmp_path / f"{strategy}.npy"
    np.save(probs, probabilities)
    arguments = ["score", "--strategy", strategy, "--probs", str(probs), "--out", str(out), *options]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    return np.load(out)


def test_reference_values_through_the_cli(tmp_path):
    pe = score(tmp_path, "pred_entropy", two_class([False])).reshape(-1)
    assert int(np.argmax(pe)) == len(QS) - 1
    assert pe[0] == pytest.approx(0.0, abs=1e-7) and pe[-1] == pytest.approx(LN2, abs=1e-6)
    np.testing.assert_allclose(score(tmp_path, "pred_entropy", two_class([False, True])), LN2, atol=1e-6)

    ee = score(tmp_path, "exp_entropy", two_class([False] * 4)).reshape(-1)
    assert int(np.argmax(ee)) == len(QS) - 1
    assert ee[0] == pytest.approx(0.0, abs=1e-7) and ee[-1] == pytest.approx(LN2, abs=1e-6)
    pair = two_class([False, True])
    assert np.all(score(tmp_path, "exp_entropy", pair) <= score(tmp_path, "pred_entropy", pair) + 1e-7)

    np.testing.assert_allclose(score(tmp_path, "mutual_information", two_class([False] * 4)), 0.0, atol=1e-6)
    mi = score(tmp_path, "mutual_information", pair).reshape(-1)
    assert int(np.argmax(mi)) == 0
    assert mi[0] == pytest.approx(LN2, abs=1e-6) and mi[-1] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", [strategy.name for strategy in all_strategies()])
def test_every_strategy_scores_through_the_cli(tmp_path, make_probabilities, name):
    probabilities = make_probabilities(members=2, classes=3, shape=(5, 6, 4), dtype="float16")
    pools = 3 if name.startswith("class_") else 1
    voxels = score(tmp_path, name, probabilities)
    assert voxels.shape == (pools, 5, 6, 4) and voxels.dtype == np.float32
    assert np.isfinite(voxels).all() and (voxels >= 0).all()
    patches = score(tmp_path, name, probabilities, "--patch-size", "2", "3", "2", "--stride", "1,3,2")
    assert patches.shape == (pools, 4, 2, 2)
    np.testing.assert_allclose(patches[:, 0, 0, 0], voxels[:, :2, :3, :2].mean(axis=(1, 2, 3)), rtol=1e-5)


def test_class_pools_follow_non_contiguous_labels(tmp_path, make_probabilities):
    probabilities = make_probabilities(members=2, classes=3, shape=(3, 3, 3))
    maps = score(tmp_path, "class_power_pe66_exp", probabilities, "--labels", "0,2,5")
    pe = score(tmp_path, "pred_entropy", probabilities)[0]
    mean = probabilities.mean(axis=0)
    np.testing.assert_allclose(maps, np.stack([pe * mean[1], pe * mean[2], pe]), rtol=1e-5, atol=1e-7)


def query(tmp_path, strategy: str, *options: str):
    out = tmp_path / f"{strategy}.json"
    arguments = ["query", "--strategy", strategy, "--probs", str(tmp_path / "probs"), "--out", str(out)]
    return CliRunner().invoke(cli, [*arguments, *options]), out


def test_clasp_query_through_the_cli(tmp_path, make_probabilities):
    (tmp_path / "probs").mkdir()
    for i in range(4):
        probabilities = make_probabilities(classes=4, shape=(12, 12, 12), seed=i, dtype="float16")
        np.save(tmp_path / "probs" / f"case_{i}.npy", probabilities)
    options = ("--patch-size", "3", "3", "3", "--query-size", "20", "--patches-per-case", "20")
    options += ("--loop", "3", "--query-steps", "5", "--seed", "11")
    result, out = query(tmp_path, "class_power_pe66_exp", *options)
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert len(written["patches"]) == 20
    # per case (the published rule): each of the 3 class pools floor(20 * (0.66 / 4)) = 3
    # candidates, the global pool floor(20 * 0.34) = 6
    for case in {c["file"] for c in written["candidates"]}:
        pools = [c["pool"] for c in written["candidates"] if c["file"] == case]
        assert {pool: pools.count(pool) for pool in set(pools)} == {1: 3, 2: 3, 3: 3, -1: 6}
    # query: floor(20 * 0.66) = 13 class patches, 4 each and the 13 mod 3 = 1 left over to one; 7 global
    chosen = [c["pool"] for c in written["candidates"] if c["chosen"]]
    assert chosen.count(-1) == 7 and sorted(chosen.count(pool) for pool in (1, 2, 3)) == [4, 4, 5]
    again, second = query(tmp_path, "class_power_pe66_exp", *options)
    assert again.exit_code == 0 and json.loads(second.read_text())["patches"] == written["patches"]


def test_kmeans_without_features_is_a_one_line_error(tmp_path, make_probabilities):
    (tmp_path / "probs").mkdir()
    np.save(tmp_path / "probs" / "case_0.npy", make_probabilities(shape=(6, 6, 6)))
    result, _ = query(tmp_path, "kmeans_bald", "--patch-size", "3", "3", "3", "--query-size", "2")
    assert result.exit_code != 0
    assert "requires features" in result.output and len(result.output.strip().splitlines()) == 1
