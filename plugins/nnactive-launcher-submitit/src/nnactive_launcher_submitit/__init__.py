"""SLURM job arrays for nnactive experiment grids, through submitit."""

__version__ = "0.1.0"
