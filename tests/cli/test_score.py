"""``nnactive score``: voxel and patch-score maps of one case, as .npy or per-pool .nii.gz."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from nnactive_core import plugins
from nnactive_core.cli.main import cli
from nnactive_core.patches.aggregate import box_means
from nnactive_core.strategies.api import GLOBAL_POOL, ScoreStrategy
from nnactive_core.testing.synthetic import make_probabilities

SHAPE = (6, 7, 8)


class ClassOne(ScoreStrategy):
    name = "class-one"
    description = "Mean probability of class 1."

    def voxel_scores(self, probs, ctx):
        return probs[:, 1].float().mean(0)[None]


class PerClass(ScoreStrategy):
    name = "per-class"
    description = "Mean probability of each foreground class, then of class 0."

    def pools(self, ctx):
        return (*ctx.foreground_values, GLOBAL_POOL)

    def voxel_scores(self, probs, ctx):
        mean = probs.float().mean(0)
        return mean[[*ctx.foreground_values, 0]]


class Failing(ScoreStrategy):
    name = "failing"
    description = "Returns NaN."

    def voxel_scores(self, probs, ctx):
        return probs[:, 0].float().mean(0)[None] * float("nan")


@pytest.fixture(autouse=True)
def stand_in_registry(monkeypatch):
    registry = plugins.Registry()
    owner = plugins.Distribution(name="test-strategies", version="0.0")
    for strategy in (ClassOne(), PerClass(), Failing()):
        registry.entries["strategy"][strategy.name] = (strategy, owner)
    monkeypatch.setattr(plugins, "registry", lambda: registry)


@pytest.fixture
def probabilities():
    return make_probabilities(shape=SHAPE, seed=4)


@pytest.fixture
def probs_file(tmp_path, probabilities):
    path = tmp_path / "case.npz"
    np.savez(path, probabilities=probabilities)
    return path


def invoke(*args):
    return CliRunner().invoke(cli, ["score", *map(str, args)])


def test_voxel_scores_as_npy(probs_file, probabilities, tmp_path):
    out = tmp_path / "scores.npy"
    result = invoke("--strategy", "class-one", "--probs", probs_file, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(out), probabilities[:, 1].mean(0)[None], rtol=1e-6)


def test_patch_scores_as_npy(probs_file, probabilities, tmp_path):
    out = tmp_path / "patch.npy"
    result = invoke(
        "--strategy",
        "class-one",
        "--probs",
        probs_file,
        "--out",
        out,
        "--patch-size",
        2,
        3,
        4,
        "--stride",
        "2",
    )
    assert result.exit_code == 0, result.output
    expected = box_means(probabilities[:, 1].mean(0), (2, 3, 4), (2, 2, 2))[None]
    assert np.load(out).shape == (1, 3, 3, 3)
    np.testing.assert_allclose(np.load(out), expected, rtol=1e-6)


def test_nifti_one_file_per_pool(probs_file, probabilities, tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    out = tmp_path / "map.nii.gz"
    result = invoke(
        "--strategy",
        "per-class",
        "--probs",
        probs_file,
        "--out",
        out,
        "--labels",
        "0,1,2",
        "--patch-size",
        2,
        2,
        2,
        "--stride",
        "1,1,2",
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.glob("map*.nii.gz"))
    assert names == ["map_pool-1.nii.gz", "map_pool-2.nii.gz", "map_pool-global.nii.gz"]
    image = sitk.ReadImage(str(tmp_path / "map_pool-2.nii.gz"))
    assert image.GetSpacing() == (2.0, 1.0, 1.0)
    expected = box_means(probabilities[:, 2].mean(0), (2, 2, 2), (1, 1, 2))
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), expected, rtol=1e-6)


def test_nifti_single_pool_keeps_the_name(probs_file, tmp_path):
    pytest.importorskip("SimpleITK")
    out = tmp_path / "one.nii.gz"
    assert invoke("--strategy", "class-one", "--probs", probs_file, "--out", out).exit_code == 0
    assert [p.name for p in tmp_path.glob("one*")] == ["one.nii.gz"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "failing"], "plugin test-strategies: strategy 'failing': voxel_scores returned NaN"),
        (["--strategy", "missing"], "not recognized; installed: class-one, failing, per-class"),
        (["--strategy", "class-one", "--labels", "0,1"], "shape"),
    ],
)
def test_errors_are_one_line(probs_file, tmp_path, args, message):
    result = invoke(*args, "--probs", probs_file, "--out", tmp_path / "x.npy")
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.npy").exists()


def test_output_suffix_is_checked(probs_file, tmp_path):
    result = invoke("--strategy", "class-one", "--probs", probs_file, "--out", tmp_path / "x.txt")
    assert result.exit_code == 2 and ".npy or .nii.gz" in result.output


def test_patch_size_with_commas_scores_as_with_spaces(probs_file, tmp_path):
    results = []
    for index, spelling in enumerate((["2", "3", "4"], ["2,3,4"])):
        out = tmp_path / f"patch_{index}.npy"
        common = ["--strategy", "class-one", "--probs", probs_file, "--out", out, "--stride", "2"]
        result = invoke(*common, "--patch-size", *spelling)
        assert result.exit_code == 0, result.output
        results.append(np.load(out))
    np.testing.assert_array_equal(results[0], results[1])
    assert results[0].shape == (1, 3, 3, 3)
