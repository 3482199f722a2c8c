"""``nnactive query`` on stored probabilities, with test-only strategies in a stand-in registry."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from nnactive_core import plugins
from nnactive_core.cli.main import cli
from nnactive_core.patches.patch import Patch, load_loop, save_loop
from nnactive_core.strategies.api import PlacementStrategy, ScoreStrategy
from nnactive_core.testing.synthetic import make_probabilities

SHAPE = (8, 9, 10)


class ClassOne(ScoreStrategy):
    name = "class-one"
    description = "Mean probability of class 1."

    def voxel_scores(self, probs, ctx):
        return probs[:, 1].float().mean(0)[None]


class Placer(PlacementStrategy):
    name = "placer"
    description = "Needs an oracle."


@pytest.fixture(autouse=True)
def stand_in_registry(monkeypatch):
    registry = plugins.Registry()
    owner = plugins.Distribution(name="test-strategies", version="0.0")
    for strategy in (ClassOne(), Placer()):
        registry.entries["strategy"][strategy.name] = (strategy, owner)
    monkeypatch.setattr(plugins, "registry", lambda: registry)


@pytest.fixture
def probs(tmp_path):
    folder = tmp_path / "probs"
    folder.mkdir()
    np.save(folder / "case_a.npy", make_probabilities(shape=SHAPE, seed=0, dtype="float16"))
    np.savez(folder / "case_b.npz", probabilities=make_probabilities(shape=SHAPE, seed=1))
    np.savez_compressed(folder / "case_c.npz", anything=make_probabilities(shape=SHAPE, seed=2))
    (folder / "notes.txt").write_text("ignored")
    return folder


def invoke(*args):
    return CliRunner().invoke(cli, ["query", *map(str, args)])


def base_args(probs, out, *extra):
    return [
        "--strategy",
        "class-one",
        "--probs",
        probs,
        "--patch-size",
        4,
        4,
        4,
        "--query-size",
        3,
        "--device",
        "cpu",
        "--out",
        out,
        *extra,
    ]


def test_writes_a_loop_file_with_candidates(probs, tmp_path):
    out = tmp_path / "query.json"
    result = invoke(*base_args(probs, out, "--patches-per-case", 2))
    assert result.exit_code == 0, result.output
    patches = load_loop(out)
    assert len(patches) == 3
    assert {p.file for p in patches} <= {"case_a.nii.gz", "case_b.nii.gz", "case_c.nii.gz"}
    assert all(p.fits_in(SHAPE) and p.size == (4, 4, 4) for p in patches)
    payload = json.loads(out.read_text())
    assert len(payload["candidates"]) == 6 and sum(c["chosen"] for c in payload["candidates"]) == 3
    chosen = sorted((c["score"] for c in payload["candidates"] if c["chosen"]), reverse=True)
    assert chosen == sorted((c["score"] for c in payload["candidates"]), reverse=True)[:3]
    assert not list(tmp_path.glob(".query.json*"))


def test_annotated_loop_files_are_respected(probs, tmp_path):
    first = tmp_path / "first.json"
    assert invoke(*base_args(probs, first, "--patches-per-case", 1)).exit_code == 0
    save_loop(tmp_path, 0, load_loop(first))
    second = tmp_path / "second.json"
    result = invoke(
        *base_args(probs, second, "--patches-per-case", 1, "--annotated", tmp_path / "loop_000.json")
    )
    assert result.exit_code == 0, result.output
    earlier = load_loop(first)
    assert not any(p.intersects(q) for p in load_loop(second) for q in earlier)


def test_stride_file_ending_and_labels_from_dataset_json(probs, tmp_path):
    dataset_json = tmp_path / "dataset.json"
    dataset_json.write_text(json.dumps({"labels": {"background": 0, "a": 1, "b": 2, "ignore": 3}}))
    out = tmp_path / "q.json"
    result = invoke(
        *base_args(probs, out, "--stride", "1,2,3", "--file-ending", ".nrrd", "--dataset-json", dataset_json)
    )
    assert result.exit_code == 0, result.output
    patches = load_loop(out)
    assert all(p.file.endswith(".nrrd") and p.start[1] % 2 == 0 and p.start[2] % 3 == 0 for p in patches)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--labels", "0,1"], "expected members x 2 classes"),
        (
            ["--patches-per-case", 1, "--query-size", 5],
            "only 3 non-overlapping candidates exist over 3 cases",
        ),
    ],
)
def test_user_errors_are_one_line_and_write_nothing(probs, tmp_path, extra, message):
    out = tmp_path / "q.json"
    result = invoke(*base_args(probs, out), *extra)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_bad_stride_is_a_usage_error(probs, tmp_path):
    result = invoke(*base_args(probs, tmp_path / "q.json", "--stride", "1,2"))
    assert result.exit_code == 2 and "--stride" in result.output


def test_unknown_strategy_lists_installed(probs, tmp_path):
    result = invoke(
        "--strategy",
        "nope",
        "--probs",
        probs,
        "--patch-size",
        4,
        4,
        4,
        "--query-size",
        1,
        "--out",
        tmp_path / "q.json",
    )
    assert result.exit_code != 0
    assert "'nope' is not recognized; installed: class-one, placer" in result.output


def test_placement_strategies_are_refused(probs, tmp_path):
    result = invoke(
        "--strategy",
        "placer",
        "--probs",
        probs,
        "--patch-size",
        4,
        4,
        4,
        "--query-size",
        1,
        "--out",
        tmp_path / "q.json",
    )
    assert result.exit_code != 0 and "ground-truth oracle" in result.output


def test_bad_probability_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke(*base_args(empty, tmp_path / "q.json"))
    assert result.exit_code != 0 and "no probability files" in result.output
    np.save(empty / "x.npy", np.zeros((1, 3, 4, 4, 4), dtype=np.float32))
    np.savez(empty / "x.npz", probabilities=np.zeros((1, 3, 4, 4, 4), dtype=np.float32))
    result = invoke(*base_args(empty, tmp_path / "q.json"))
    assert result.exit_code != 0 and "has both x.npy and x.npz" in result.output
    (empty / "x.npy").unlink()
    (empty / "x.npz").unlink()
    np.savez(empty / "y.npz", a=np.zeros(1), b=np.zeros(1))
    result = invoke(*base_args(empty, tmp_path / "q.json"))
    assert result.exit_code != 0 and "y.npz" in result.output and "'probabilities'" in result.output


def test_patch_from_query_matches_engine_on_the_same_data(probs, tmp_path):
    out = tmp_path / "q.json"
    assert invoke(*base_args(probs, out, "--query-size", 1)).exit_code == 0
    best = load_loop(out)[0]
    case_seed = {"case_a.nii.gz": 0, "case_b.nii.gz": 1, "case_c.nii.gz": 2}[best.file]
    dtype = "float16" if best.file == "case_a.nii.gz" else "float32"
    score = make_probabilities(shape=SHAPE, seed=case_seed, dtype=dtype)[:, 1].astype(np.float32).mean(0)
    assert isinstance(best, Patch)
    assert json.loads(out.read_text())["candidates"][0]["score"] == pytest.approx(
        max(c["score"] for c in json.loads(out.read_text())["candidates"])
    )
    assert score[best.slices].mean() == pytest.approx(
        max(c["score"] for c in json.loads(out.read_text())["candidates"]), abs=1e-3
    )


def test_every_patch_size_spelling_queries_the_same_patches(probs, tmp_path):
    """``4 4 4`` (three values), ``4,4,4``, ``"4 4 4"`` and ``4`` are one patch size, as in ``run``."""
    outputs = []
    for index, spelling in enumerate((["4", "4", "4"], ["4,4,4"], ["4 4 4"], ["4"])):
        out = tmp_path / f"query_{index}.json"
        common = ["--strategy", "class-one", "--probs", probs, "--query-size", 3, "--device", "cpu"]
        result = invoke(*common, "--out", out, "--patch-size", *spelling)
        assert result.exit_code == 0, result.output
        outputs.append(load_loop(out))
    assert all(patches == outputs[0] for patches in outputs) and outputs[0][0].size == (4, 4, 4)
