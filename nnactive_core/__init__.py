"""nnactive: active learning for 3D biomedical image segmentation on nnU-Net v2.

The package root stays import-light (no torch, no nnunetv2) so that the CLI starts instantly.
"""

from nnactive_core.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
