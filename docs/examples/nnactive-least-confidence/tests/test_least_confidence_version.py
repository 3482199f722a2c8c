"""The version has one source, ``nnactive_least_confidence.__version__``; the installed metadata is
built from it."""

from importlib import metadata

import nnactive_least_confidence


def test_installed_metadata_version_is_the_package_version():
    assert metadata.version("nnactive-least-confidence") == nnactive_least_confidence.__version__
