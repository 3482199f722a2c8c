"""The version has one source, ``nnactive_dataset_atlas.__version__``;
the installed metadata is built from it."""

from importlib import metadata

import nnactive_dataset_atlas


def test_installed_metadata_version_is_the_package_version():
    assert metadata.version("nnactive-dataset-atlas") == nnactive_dataset_atlas.__version__
