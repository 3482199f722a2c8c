"""Patches, loop files and the patch query engine."""

from nnactive_core.patches.patch import Patch, load_loop, loop_file_name, read_loop_files, save_loop

__all__ = ["Patch", "load_loop", "loop_file_name", "read_loop_files", "save_loop"]
