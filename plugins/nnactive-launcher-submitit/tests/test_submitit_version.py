"""The version has one source, ``nnactive_launcher_submitit.__version__``;
the installed metadata is built from it."""

from importlib import metadata

import nnactive_launcher_submitit


def test_installed_metadata_version_is_the_package_version():
    assert metadata.version("nnactive-launcher-submitit") == nnactive_launcher_submitit.__version__
