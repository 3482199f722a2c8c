"""The annotation-time model on patches whose seconds are counted by hand."""

import numpy as np
import pytest

from nnactive_core.costs.annotation_time import ANNOTATION_SECONDS, AnnotationTime, boundary_pixels
from nnactive_core.patches.patch import Patch
from nnactive_core.plugins import registry

LABELS = {"background": 0, "liver": 1, "tumour": 2}
MODEL = AnnotationTime()  # overhead 10 s, empty check 0.2 s/slice, 4 s/slice, 0.05 s/boundary pixel


def seconds(labels):
    patch = Patch(file="c.nii.gz", start=(0, 0, 0), size=labels.shape)
    return MODEL.measure(patch, labels, LABELS, 0)[ANNOTATION_SECONDS]


def test_an_all_background_patch_costs_the_overhead_and_a_scroll_through():
    assert seconds(np.zeros((4, 5, 5), dtype=np.uint8)) == pytest.approx(10 + 4 * 0.2)


def test_a_square_costs_one_slice_and_its_ring_of_boundary_pixels():
    labels = np.zeros((3, 5, 5), dtype=np.uint8)
    labels[1, 1:4, 1:4] = 1  # 3 x 3 square: 8 boundary pixels around its centre
    assert boundary_pixels(labels == 1).tolist() == [0, 8, 0]
    assert seconds(labels) == pytest.approx(10 + 4 + 0.05 * 8)


def test_the_patch_faces_are_not_drawn():
    labels = np.zeros((3, 5, 5), dtype=np.uint8)
    labels[0] = 1  # a whole slice of foreground: the box is its contour
    assert seconds(labels) == pytest.approx(10 + 4)


def test_each_class_draws_its_own_boundary():
    labels = np.zeros((3, 5, 5), dtype=np.uint8)
    labels[0, :, :2] = 1
    labels[0, :, 2:] = 2  # the shared edge is drawn once per class: 5 + 5 pixels
    labels[2, 2, 2] = 1  # a single foreground pixel: one boundary pixel, one more slice
    assert seconds(labels) == pytest.approx(10 + 2 * 4 + 0.05 * 11)


def test_the_estimate_prices_the_most_likely_labels():
    labels = np.zeros((3, 5, 5), dtype=np.uint8)
    labels[1, 1:4, 1:4] = 1
    probabilities = np.full((3, *labels.shape), 0.1, dtype=np.float32)
    for value in range(3):
        probabilities[value][labels == value] = 0.8
    patch = Patch(file="c.nii.gz", start=(0, 0, 0), size=labels.shape)
    assert MODEL.estimate(patch, probabilities) == {ANNOTATION_SECONDS: pytest.approx(seconds(labels))}
    assert MODEL.estimate(patch, None) is None


def test_constants_are_parameters_and_the_core_registers_the_default_model():
    slow = AnnotationTime(overhead_seconds=0.0, slice_seconds=0.0, boundary_seconds=1.0)
    labels = np.zeros((3, 5, 5), dtype=np.uint8)
    labels[1, 1:4, 1:4] = 1
    assert slow.measure(Patch(file="c", start=(0, 0, 0), size=(3, 5, 5)), labels, LABELS, 0) == {
        ANNOTATION_SECONDS: 8.0
    }
    assert registry().get("cost metric", "annotation-seconds") == MODEL
