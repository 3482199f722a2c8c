"""The engine's torch side: the aggregation on a device and stacks crossing to it. Without a GPU the
device is the CPU, which runs the same torch code."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nnactive_core.patches.aggregate import box_means
from nnactive_core.testing.synthetic import make_probabilities

torch = pytest.importorskip("torch")
device = pytest.importorskip("nnactive_core.query.device")


@pytest.mark.parametrize("stride", [(1, 1, 1), (2, 3, 1)])
def test_box_means_in_torch_equal_the_numpy_ones(stride):
    scores = np.random.default_rng(0).random((2, 13, 11, 17), dtype=np.float32)
    expected = box_means(scores, (4, 5, 6), stride)
    means = device.box_means(torch.from_numpy(scores), (4, 5, 6), stride)
    assert means.dtype == np.float32 and means.shape == expected.shape
    np.testing.assert_array_equal(means, expected)


def test_a_mapped_stack_crosses_slab_by_slab(tmp_path, monkeypatch):
    probs = make_probabilities(members=2, classes=3, shape=(9, 4, 5), seed=1, dtype="float16")
    np.save(tmp_path / "p.npy", probs)
    mapped = np.load(tmp_path / "p.npy", mmap_mode="r")
    monkeypatch.setattr(device, "TRANSFER_SLAB_BYTES", 2 * 3 * 4 * 5 * 4 * 2)
    tensor = device.in_slabs(mapped, "cpu")
    assert tensor.dtype == torch.float16
    np.testing.assert_array_equal(tensor.numpy(), probs)


def test_read_only_arrays_are_copied_for_torch_on_the_cpu(tmp_path):
    probs = make_probabilities(members=2, classes=2, shape=(3, 3, 3), seed=0)
    shared = device.to_device(probs, "cpu")
    assert shared.data_ptr() == probs.ctypes.data, "a writable array is shared"
    probs.setflags(write=False)
    assert device.to_device(probs, "cpu").data_ptr() != probs.ctypes.data


def test_a_cpu_query_with_numpy_strategies_never_imports_torch(tmp_path):
    pytest.importorskip("nnactive_strategies_bald")
    for index in range(2):
        np.save(tmp_path / f"case_{index}.npy", make_probabilities(shape=(10, 10, 10), seed=index))
    script = textwrap.dedent(
        f"""
        import sys
        from nnactive_core.cli.main import cli
        cli(["query", "--strategy", "pred_entropy", "--probs", {str(tmp_path)!r}, "--patch-size", "4", "4",
             "4", "--query-size", "2", "--out", {str(tmp_path / "q.json")!r}], standalone_mode=False)
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "q.json").is_file()
