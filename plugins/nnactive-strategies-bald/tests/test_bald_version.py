"""The version has one source, ``nnactive_strategies_bald.__version__``;
the installed metadata is built from it."""

from importlib import metadata

import nnactive_strategies_bald


def test_installed_metadata_version_is_the_package_version():
    assert metadata.version("nnactive-strategies-bald") == nnactive_strategies_bald.__version__
