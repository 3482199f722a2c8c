"""Patches and loop files, and the grid primitives the query engine builds on: box aggregation,
blocked starts and greedy selection."""

from nnactive_core.patches.patch import Patch, load_loop, loop_file_name, read_loop_files, save_loop

__all__ = ["Patch", "load_loop", "loop_file_name", "read_loop_files", "save_loop"]
