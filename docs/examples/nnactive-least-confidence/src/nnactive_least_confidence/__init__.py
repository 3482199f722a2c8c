"""Least-confidence sampling: an example nnactive strategy plugin."""

__version__ = "0.1.0"
