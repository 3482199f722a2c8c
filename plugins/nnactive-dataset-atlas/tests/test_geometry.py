import numpy as np
import pytest

from nnactive_dataset_atlas.geometry import tile_bounds


@pytest.mark.parametrize("shape, tile", [((34, 120, 47), (48, 48, 48)), ((17, 33, 64), (16, 16, 32))])
def test_tiles_cover_the_grid_once_and_respect_the_largest_edge(shape, tile):
    cover = np.zeros(shape, dtype=int)
    for box in tile_bounds(shape, tile):
        cover[box] += 1
        sizes = [s.stop - s.start for s in box]
        assert all(0 < size <= t for size, t in zip(sizes, tile, strict=True))
    assert (cover == 1).all()


def test_tiles_of_an_axis_differ_by_at_most_one_voxel():
    sizes = {box[1].stop - box[1].start for box in tile_bounds((10, 121, 10), (48, 48, 48))}
    assert sizes <= {40, 41} and len(tile_bounds((10, 121, 10), (48, 48, 48))) == 3
