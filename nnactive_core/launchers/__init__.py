"""Launchers run experiment grids on an execution engine."""
