import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nnactive_strategies_bald.measures import (
    class_weighted_entropy,
    expected_entropy,
    measure,
    mutual_information,
    predictive_entropy,
    slab_depth,
)

LN2 = math.log(2.0)
QS = np.round(np.arange(0.0, 0.51, 0.1), 2)


def two_class(rows) -> torch.Tensor:
    """members x 2 x 1 x 1 x len(QS): member m has (q, 1 - q) or (1 - q, q) along x."""
    stack = []
    for mirrored in rows:
        first = 1.0 - QS if mirrored else QS
        stack.append(np.stack([first, 1.0 - first]))
    return torch.tensor(np.asarray(stack)[:, :, None, None, :], dtype=torch.float32)


def flat(values: torch.Tensor) -> np.ndarray:
    return values.reshape(-1).numpy()


# reference values of the established tests (behaviour.md section 13, item 3)


def test_predictive_entropy_reference_values():
    pe = flat(predictive_entropy(two_class([False])))
    assert int(np.argmax(pe)) == len(QS) - 1
    assert pe[0] == pytest.approx(0.0, abs=1e-7)
    assert pe[-1] == pytest.approx(LN2, abs=1e-6)
    mirrored = flat(predictive_entropy(two_class([False, True])))
    np.testing.assert_allclose(mirrored, LN2, atol=1e-6)


def test_expected_entropy_reference_values():
    identical = two_class([False] * 4)
    ee = flat(expected_entropy(identical))
    np.testing.assert_array_equal(ee, flat(expected_entropy(identical)))
    assert int(np.argmax(ee)) == len(QS) - 1
    assert ee[0] == pytest.approx(0.0, abs=1e-7)
    assert ee[-1] == pytest.approx(LN2, abs=1e-6)
    np.testing.assert_allclose(ee, flat(predictive_entropy(identical)), atol=1e-6)
    pair = two_class([False, True])
    assert np.all(flat(expected_entropy(pair)) <= flat(predictive_entropy(pair)) + 1e-7)


def test_mutual_information_reference_values():
    np.testing.assert_allclose(flat(mutual_information(two_class([False] * 4))), 0.0, atol=1e-6)
    mi = flat(mutual_information(two_class([False, True])))
    assert int(np.argmax(mi)) == 0
    assert mi[0] == pytest.approx(LN2, abs=1e-6)
    assert mi[-1] == pytest.approx(0.0, abs=1e-6)


def test_measure_by_name_and_unknown_name():
    probs = two_class([False, True])
    torch.testing.assert_close(measure("mutual_information", probs), mutual_information(probs))
    with pytest.raises(ValueError, match="unknown uncertainty measure 'entropy'"):
        measure("entropy", probs)


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match="members x classes x Z x Y x X"):
        predictive_entropy(torch.ones(2, 3, 4))


def test_slabs_give_the_same_result_as_one_pass(make_probabilities):
    probs = torch.from_numpy(make_probabilities(members=3, classes=4, shape=(7, 5, 6), seed=3))
    one_slice = 3 * 4 * 5 * 6 * 4
    assert slab_depth(probs, slab_bytes=2 * one_slice) == 2
    assert slab_depth(probs, slab_bytes=1) == 1
    for function in (predictive_entropy, expected_entropy, mutual_information):
        torch.testing.assert_close(function(probs, slab_bytes=2 * one_slice), function(probs))
    torch.testing.assert_close(
        class_weighted_entropy(probs, [1, 3], slab_bytes=1), class_weighted_entropy(probs, [1, 3])
    )


def test_class_weighted_entropy_channels(make_probabilities):
    probs = torch.from_numpy(make_probabilities(members=2, classes=4, shape=(3, 4, 5), seed=1))
    maps = class_weighted_entropy(probs, [3, 1])
    pe = predictive_entropy(probs)
    mean = probs.mean(dim=0)
    assert maps.shape == (3, 3, 4, 5) and maps.dtype == torch.float32
    torch.testing.assert_close(maps[0], pe * mean[3])
    torch.testing.assert_close(maps[1], pe * mean[1])
    torch.testing.assert_close(maps[2], pe)
    with pytest.raises(ValueError, match="class channel 4 is out of range for 4"):
        class_weighted_entropy(probs, [4])


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_zero_probabilities_and_rounding_give_no_nan_and_leave_the_input_alone(dtype):
    probs = torch.tensor([[1.0, 0.0, 0.0], [1.0005, -0.0005, 0.0]], dtype=dtype)[:, :, None, None, None]
    original = probs.clone()
    for function in (predictive_entropy, expected_entropy, mutual_information):
        assert torch.isfinite(function(probs)).all()
    assert torch.isfinite(class_weighted_entropy(probs, [1, 2])).all()
    torch.testing.assert_close(probs, original, atol=0, rtol=0)


# properties

logits = st.tuples(st.integers(1, 4), st.integers(2, 4), st.integers(1, 3), st.integers(1, 3)).flatmap(
    lambda dims: arrays(
        np.float64,
        (dims[0], dims[1], dims[2], 1, dims[3]),
        elements=st.floats(-8.0, 8.0, allow_nan=False, allow_infinity=False),
    )
)


def softmax(values: np.ndarray, axis: int = 1) -> torch.Tensor:
    shifted = np.exp(values - values.max(axis=axis, keepdims=True))
    return torch.tensor(shifted / shifted.sum(axis=axis, keepdims=True), dtype=torch.float32)


@settings(max_examples=60, deadline=None)
@given(logits)
def test_pe_at_least_ee_at_least_zero_and_mi_non_negative(values):
    probs = softmax(values)
    pe, ee, mi = predictive_entropy(probs), expected_entropy(probs), mutual_information(probs)
    assert torch.all(ee >= 0)
    assert torch.all(pe >= ee - 1e-5)
    assert torch.all(mi >= 0)
    torch.testing.assert_close(mi, (pe - ee).clamp(min=0), atol=1e-6, rtol=0)


@settings(max_examples=40, deadline=None)
@given(logits, st.integers(2, 5))
def test_identical_members_have_no_mutual_information(values, members):
    probs = softmax(values[:1]).repeat(members, 1, 1, 1, 1)
    assert torch.all(mutual_information(probs) <= 1e-6)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 3), st.integers(2, 9))
def test_uniform_probabilities_have_entropy_ln_c(members, classes):
    probs = torch.full((members, classes, 2, 1, 3), 1.0 / classes)
    torch.testing.assert_close(predictive_entropy(probs), torch.full((2, 1, 3), math.log(classes)))
    torch.testing.assert_close(expected_entropy(probs), torch.full((2, 1, 3), math.log(classes)))


@settings(max_examples=40, deadline=None)
@given(logits, st.randoms(use_true_random=False))
def test_invariant_under_class_permutation(values, random):
    probs = softmax(values)
    order = list(range(probs.shape[1]))
    random.shuffle(order)
    permuted = probs[:, order]
    for function in (predictive_entropy, expected_entropy, mutual_information):
        torch.testing.assert_close(function(permuted), function(probs), atol=1e-6, rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(logits)
def test_float16_within_1e3_of_float32(values):
    probs = softmax(values)
    for function in (predictive_entropy, expected_entropy, mutual_information):
        half = function(probs.to(torch.float16))
        assert half.dtype == torch.float32
        torch.testing.assert_close(half, function(probs), atol=1e-3, rtol=0)


# the numpy path (the engine's CPU path) against the torch path (the CUDA path)

NUMPY_FUNCTIONS = (predictive_entropy, expected_entropy, mutual_information)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_numpy_stack_gives_numpy_scores_equal_to_torch(make_probabilities, dtype):
    probs = make_probabilities(members=4, classes=3, shape=(9, 7, 8), seed=5, dtype=dtype)
    probs[:, :, 0] = 0.0
    probs[:, 0, 0] = 1.0  # certain voxels: 0 log 0
    probs[0, 1, 1, 1, 1], probs[0, 2, 1, 1, 1] = -0.002, 1.004  # resampling overshoot, clipped
    tensor = torch.from_numpy(probs)
    for function in NUMPY_FUNCTIONS:
        scores = function(probs)
        assert isinstance(scores, np.ndarray) and scores.dtype == np.float32 and scores.shape == (9, 7, 8)
        np.testing.assert_allclose(scores, function(tensor).numpy(), rtol=2e-6, atol=2e-7)
    maps = class_weighted_entropy(probs, [2, 1])
    assert isinstance(maps, np.ndarray) and maps.shape == (3, 9, 7, 8)
    np.testing.assert_allclose(maps, class_weighted_entropy(tensor, [2, 1]).numpy(), rtol=2e-6, atol=2e-7)
    # t log t with t the smallest normal float32 stands for 0 log 0 on the numpy path
    np.testing.assert_array_less(np.abs(predictive_entropy(probs)[0]), 1e-35)


def test_numpy_slabs_give_the_same_result_as_one_pass(make_probabilities):
    probs = make_probabilities(members=3, classes=4, shape=(7, 5, 6), seed=3)
    one_slice = 3 * 4 * 5 * 6 * 4
    for function in NUMPY_FUNCTIONS:
        # slabs of 2, 2, 2, 1 slices (the last one thinner) against one slab of all 7
        np.testing.assert_array_equal(function(probs, slab_bytes=2 * one_slice), function(probs))
    np.testing.assert_array_equal(
        class_weighted_entropy(probs, [1, 3], slab_bytes=1), class_weighted_entropy(probs, [1, 3])
    )


def test_numpy_path_reads_a_read_only_memory_map_without_changing_it(make_probabilities, tmp_path):
    probs = make_probabilities(members=2, classes=3, shape=(6, 5, 4), seed=2, dtype="float16")
    np.save(tmp_path / "probs.npy", probs)
    mapped = np.load(tmp_path / "probs.npy", mmap_mode="r")
    for function in NUMPY_FUNCTIONS:
        np.testing.assert_array_equal(function(mapped, slab_bytes=1), function(probs))
    np.testing.assert_array_equal(np.load(tmp_path / "probs.npy"), probs)


def test_numpy_path_rejects_integer_probabilities():
    with pytest.raises(ValueError, match="floating point"):
        predictive_entropy(np.ones((2, 2, 1, 1, 1), dtype=np.int64))
