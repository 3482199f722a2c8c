"""The version has one source, ``nnactive_random_fg.__version__``;
the installed metadata is built from it."""

from importlib import metadata

import nnactive_random_fg


def test_installed_metadata_version_is_the_package_version():
    assert metadata.version("nnactive-random-fg") == nnactive_random_fg.__version__
