"""The version has one source, ``nnactive_tracker_wandb.__version__``; the installed metadata is built
from it."""

from importlib import metadata

import nnactive_tracker_wandb


def test_installed_metadata_version_is_the_package_version():
    assert metadata.version("nnactive-tracker-wandb") == nnactive_tracker_wandb.__version__
