"""nnactive plugin: Weights & Biases tracking of active-learning experiments (``nnactive run --tracker
wandb``)."""

__version__ = "0.1.0"
