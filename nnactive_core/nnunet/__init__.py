"""nnU-Net adapter (placeholder docstring, completed below)."""

from nnactive_core.nnunet.environment import configure_process_defaults

configure_process_defaults()
