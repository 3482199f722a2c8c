"""Entry point of the plugin: registers the ``wandb`` tracker. wandb itself is imported only when a run
starts, so listing plugins and shell completion stay fast."""

from nnactive_core import hookimpl


@hookimpl
def nnactive_register_trackers(register):
    from nnactive_tracker_wandb.tracker import WandbTracker

    register(WandbTracker())
