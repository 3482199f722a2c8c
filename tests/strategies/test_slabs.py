"""Slabs of a probability stack: threads, clipping, memory maps."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from nnactive_core.strategies.slabs import SlabSource, is_mapped, map_slabs, release_pages, slab_depth
from nnactive_core.testing.synthetic import make_probabilities


def member_sum(slab: np.ndarray) -> np.ndarray:
    return slab.sum(axis=(0, 1))[None]


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_every_slab_is_reduced_once_whatever_the_threads(threads, dtype):
    probs = make_probabilities(members=2, classes=3, shape=(11, 4, 5), seed=1, dtype=dtype)
    one_slice = 2 * 3 * 4 * 5 * 4
    out = map_slabs(probs, 1, member_sum, slab_bytes=3 * one_slice, threads=threads)
    assert out.dtype == np.float32 and out.shape == (1, 11, 4, 5)
    np.testing.assert_allclose(out[0], probs.astype(np.float32).sum(axis=(0, 1)), rtol=1e-6)


def test_slabs_are_float32_copies_clipped_when_asked():
    probs = np.array([[1.5, -0.5], [0.25, 0.5]], dtype=np.float16).reshape(2, 2, 1, 1, 1)
    seen = []

    def keep(slab):
        seen.append(slab.copy())
        return slab[0, :1]

    map_slabs(probs, 1, keep, clip=(0.0, 1.0))
    assert seen[0].dtype == np.float32
    np.testing.assert_array_equal(seen[0].reshape(-1), [1.0, 0.0, 0.25, 0.5])
    assert probs[0, 0, 0, 0, 0] == 1.5, "the stack itself is never changed"


def test_an_error_in_a_thread_reaches_the_caller():
    def fail(slab):
        raise ZeroDivisionError("slab")

    with pytest.raises(ZeroDivisionError, match="slab"):
        map_slabs(np.ones((1, 2, 6, 2, 2), np.float32), 1, fail, slab_bytes=1, threads=2)


def test_slab_depth_and_integer_stacks():
    assert slab_depth((2, 3, 10, 4, 5), 2 * 3 * 4 * 5 * 4 * 3) == 3
    assert slab_depth((2, 3, 10, 4, 5), 1) == 1
    with pytest.raises(ValueError, match="floating point"):
        map_slabs(np.ones((1, 2, 2, 2, 2), np.int32), 1, member_sum)


def _mapping_rss_kb(path) -> int:
    """Resident kB of the mappings of ``path`` in this process (/proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:
                inside = line.rstrip().endswith(str(path))
            elif inside and fields[0] == "Rss:":
                total += int(fields[1])
    return total


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_pages_of_a_mapped_stack_are_released_after_each_slab(tmp_path):
    probs = make_probabilities(members=4, classes=3, shape=(32, 64, 64), seed=0)
    path = tmp_path / "stack.npy"
    np.save(path, probs)
    mapped = np.load(path, mmap_mode="r")
    assert is_mapped(mapped) and not is_mapped(probs)
    peaks = []

    def reduce(slab):
        peaks.append(_mapping_rss_kb(path))
        return slab[0, :1]

    out = map_slabs(mapped, 1, reduce, slab_bytes=4 * 3 * 64 * 64 * 4 * 2, threads=1)
    np.testing.assert_array_equal(out[0], probs[0, 0])
    stack_kb = probs.nbytes // 1024
    assert max(peaks) < stack_kb / 4, f"resident {max(peaks)} kB of a {stack_kb} kB stack"
    float(mapped.sum())
    assert _mapping_rss_kb(path) > stack_kb / 2, "touching the whole map makes it resident"
    release_pages(mapped)
    assert _mapping_rss_kb(path) < stack_kb / 8
    release_pages(probs)  # an array in RAM: nothing to do


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_a_file_map_is_read_by_position_also_for_views(tmp_path, dtype):
    probs = make_probabilities(members=3, classes=2, shape=(7, 3, 4), seed=4, dtype=dtype)
    np.save(tmp_path / "p.npy", probs)
    mapped = np.load(tmp_path / "p.npy", mmap_mode="c")
    for view, expected in ((mapped, probs), (mapped[1:], probs[1:]), (mapped[:, :, 2:], probs[:, :, 2:])):
        with SlabSource(view) as source:
            assert (source._fd is not None) == view.flags.c_contiguous
            staging = np.empty((*view.shape[:2], 2, *view.shape[3:]), dtype=view.dtype)
            np.testing.assert_array_equal(source.read(slice(1, 3), staging), expected[:, :, 1:3])
        out = map_slabs(view, 1, member_sum, slab_bytes=1, threads=2)
        np.testing.assert_allclose(out[0], expected.astype(np.float32).sum(axis=(0, 1)), rtol=1e-6)


def test_the_documented_numpy_strategy_scores_as_its_torch_form():
    """The ``accepts_numpy`` example of docs/write-a-strategy-plugin.md, through the engine."""
    torch = pytest.importorskip("torch")
    from nnactive_core.query.engine import score_case
    from nnactive_core.strategies.api import ScoreStrategy
    from nnactive_core.testing.synthetic import make_query_context

    class LeastConfidence(ScoreStrategy):
        accepts_numpy = True
        name = "least_confidence"

        def voxel_scores(self, probs, ctx):
            if isinstance(probs, np.ndarray):
                return map_slabs(probs, 1, lambda slab: 1.0 - slab.mean(axis=0).max(axis=0)[None])
            mean = probs.float().mean(dim=0)
            return (1.0 - mean.max(dim=0).values).unsqueeze(0)

    probs = make_probabilities(members=3, classes=4, shape=(9, 6, 7), seed=2, dtype="float16")
    ctx = make_query_context(label_values=(0, 1, 2, 3))
    scores = score_case(LeastConfidence(), probs, ctx)
    assert isinstance(scores, np.ndarray) and scores.shape == (1, 9, 6, 7)
    expected = LeastConfidence().voxel_scores(torch.from_numpy(probs), ctx).numpy()
    np.testing.assert_allclose(scores, expected, atol=1e-6)
