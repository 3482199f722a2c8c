"""Feature maps: tile accumulation and the mapping back through nnU-Net's crop and transpose."""

from __future__ import annotations

import numpy as np
import torch

from nnactive_core.nnunet.features import TileFeatureAccumulator, hooked_stage, to_raw_grid


def _tile(*ranges):
    return [slice(a, b) for a, b in ranges]


def test_tiles_average_and_unseen_cells_are_nan():
    acc = TileFeatureAccumulator(image_shape=(16, 8, 8), padded_shape=(16, 8, 8), factor=(4, 4, 4))
    acc.add(torch.ones(2, 2, 2, 2), _tile((0, 8), (0, 8), (0, 8)))
    acc.add(torch.full((2, 2, 2, 2), 3.0), _tile((4, 12), (0, 8), (0, 8)))
    mean = acc.mean()
    assert mean.shape == (2, 4, 2, 2)
    np.testing.assert_allclose(mean[:, 0], 1.0)
    np.testing.assert_allclose(mean[:, 1], 2.0)
    np.testing.assert_allclose(mean[:, 2], 3.0)
    assert np.isnan(mean[:, 3]).all()


def test_unaligned_tiles_cover_every_overlapped_cell():
    acc = TileFeatureAccumulator(image_shape=(45, 8, 8), padded_shape=(45, 8, 8), factor=(4, 4, 4))
    for start in (0, 13):
        values = torch.arange(8, dtype=torch.float32).reshape(1, 8, 1, 1).expand(1, 8, 2, 2) + start
        acc.add(values, _tile((start, start + 32), (0, 8), (0, 8)))
    mean = acc.mean()
    assert mean.shape == (1, 12, 2, 2)
    assert np.isfinite(mean).all()
    assert mean[0, 11, 0, 0] == 13 + 7  # only the second tile reaches the last cell


def test_padding_offset_is_removed():
    # an 8-voxel image padded to a 16-voxel patch sits at offset 4 in the padded tile
    acc = TileFeatureAccumulator(image_shape=(8, 16, 16), padded_shape=(16, 16, 16), factor=(4, 4, 4))
    values = torch.arange(4, dtype=torch.float32).reshape(1, 4, 1, 1).expand(1, 4, 4, 4)
    acc.add(values, _tile((0, 16), (0, 16), (0, 16)))
    np.testing.assert_allclose(acc.mean()[0, :, 0, 0], [1, 2])


def test_raw_grid_reverts_crop_and_transpose():
    # preprocessed (transposed) order: axes (x, z, y); crop removed 8 voxels in front of axis 0
    feature_map = np.arange(1 * 2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    properties = {
        "shape_before_cropping": (16, 12, 16),
        "bbox_used_for_cropping": [[8, 16], [0, 12], [0, 16]],
        "shape_after_cropping_and_before_resampling": (8, 12, 16),
    }
    mapped, factor = to_raw_grid(
        feature_map, (4, 4, 4), (8, 12, 16), properties, transpose_backward=(1, 2, 0)
    )
    assert factor == (4, 4, 4)
    assert mapped.shape == (1, 3, 4, 4)  # raw order (z, y, x) = transposed axes (1, 2, 0)
    assert np.isnan(mapped[0, :, :, :2]).all()  # cropped-away cells (first 8 voxels of axis 0)
    np.testing.assert_array_equal(mapped[0, :, :, 2:], feature_map[0].transpose(1, 2, 0))


def test_raw_grid_follows_resampling():
    feature_map = np.array([[[[0.0]], [[1.0]]]], dtype=np.float32).reshape(1, 2, 1, 1)
    properties = {
        "shape_before_cropping": (16, 4, 4),
        "bbox_used_for_cropping": [[0, 16], [0, 4], [0, 4]],
        "shape_after_cropping_and_before_resampling": (16, 4, 4),
    }
    # the preprocessed image is half as long: raw cells 0-1 map to feature 0, cells 2-3 to feature 1
    mapped, _ = to_raw_grid(feature_map, (4, 4, 4), (8, 4, 4), properties, transpose_backward=(0, 1, 2))
    np.testing.assert_array_equal(mapped[0, :, 0, 0], [0, 0, 1, 1])


def test_hooked_stage_of_an_nnunet_unet():
    from dynamic_network_architectures.architectures.unet import PlainConvUNet

    net = PlainConvUNet(1, 4, (8, 16, 32, 64), torch.nn.Conv3d, 3, (1, 2, 2, (1, 2, 2)), 2, 3, (2, 2, 2))
    stage, factor = hooked_stage(net)
    assert stage is net.encoder.stages[-2]
    assert factor == (4, 4, 4)
