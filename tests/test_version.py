"""The version has one source, ``nnactive_core.__version__``; the installed metadata is built from it."""

from importlib import metadata

import nnactive_core


def test_installed_metadata_version_is_the_package_version():
    assert metadata.version("nnactive-core") == nnactive_core.__version__
