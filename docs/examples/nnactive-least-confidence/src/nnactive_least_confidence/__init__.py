"""Least-confidence sampling: an example nnactive strategy plugin."""
