"""A probability stack in float32 slabs along Z, for strategies that score in numpy on the CPU.

A strategy that sets ``accepts_numpy`` gets the stack as the engine has it: a float16 or float32
numpy array, possibly a memory map of a stack larger than the memory bound (prediction spills those
to disk, ``nnactive query`` maps ``.npy`` files). :func:`map_slabs` walks such a stack in slabs of a
few Z slices: each is copied (and clipped, if asked) into a float32 buffer of its thread, reduced by
the strategy's function, and written into the result. So a case never needs more than its result and
one slab per thread, a slab stays in the CPU cache for every pass the strategy makes over it, and the
threads (:func:`nnactive_core.threads.thread_budget`) work on whole slabs, never waiting on each other
inside one. Pages of a memory-mapped stack are handed back to the page cache after each slab
(:func:`release_pages`), so scoring a spilled stack does not grow the resident set to its size.
"""

from __future__ import annotations

import itertools
import mmap
import threading
from collections.abc import Callable

import numpy as np

from nnactive_core.threads import thread_budget

CPU_SLAB_BYTES = 2 * 2**20
"""float32 bytes of one slab on the CPU: within the last-level cache, large enough that numpy's
per-call cost stays small against the work on the slab."""

PAGE = mmap.PAGESIZE


def slab_depth(shape, slab_bytes: int) -> int:
    """Z slices per slab of a members x classes x Z x Y x X stack so one slab's float32 copy stays
    within ``slab_bytes`` (at least one slice)."""
    members, classes, _, height, width = shape
    per_slice = members * classes * height * width * 4
    return max(1, slab_bytes // max(per_slice, 1))


def is_mapped(array: np.ndarray) -> bool:
    """Whether ``array`` is a memory map of a file (``np.memmap``, ``np.load(..., mmap_mode=...)``) or a
    view of one."""
    return getattr(array, "_mmap", None) is not None


def release_pages(array: np.ndarray) -> None:
    """Drop the pages of a memory-mapped ``array`` (a view of a ``np.memmap``) from this process's
    resident set, whole pages inside the array's contiguous runs only; the data stays in the page cache
    and is read again from there when touched. Does nothing for arrays in RAM."""
    mapping = getattr(array, "_mmap", None)
    if mapping is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    try:
        base = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError):  # a closed mapping
        return
    leading = 0
    while leading < array.ndim and not array[(0,) * leading].flags.c_contiguous:
        leading += 1
    for index in np.ndindex(array.shape[:leading]):
        run = array[index]
        start = run.ctypes.data - base
        first = -(-start // PAGE) * PAGE
        last = (start + run.nbytes) // PAGE * PAGE
        if last > first:
            mapping.madvise(mmap.MADV_DONTNEED, first, last - first)


def map_slabs(
    probs: np.ndarray,
    channels: int,
    reduce: Callable[[np.ndarray], np.ndarray],
    *,
    clip: tuple[float, float] | None = None,
    slab_bytes: int = CPU_SLAB_BYTES,
    threads: int | None = None,
) -> np.ndarray:
    """``out[:, z] = reduce(slab)`` for consecutive slabs ``z`` of ``probs`` (members x classes x Z x Y
    x X, any floating dtype), where ``slab`` is a float32 copy of ``probs[:, :, z]``, clipped to
    ``clip`` when given, and ``reduce`` returns ``channels`` x slab depth x Y x X. ``out`` is float32.
    ``reduce`` runs on up to ``threads`` threads at once (default: the thread budget) and must not
    keep the slab, whose buffer is reused."""
    if not np.issubdtype(probs.dtype, np.floating):
        raise ValueError(f"probabilities must be floating point, got {probs.dtype}")
    _, _, depth, height, width = probs.shape
    out = np.empty((channels, depth, height, width), dtype=np.float32)
    step = slab_depth(probs.shape, slab_bytes)
    starts = range(0, depth, step)
    workers = max(1, min(thread_budget() if threads is None else int(threads), len(starts)))
    next_slab = itertools.count()
    failures: list[BaseException] = []

    def work() -> None:
        buffer = np.empty((*probs.shape[:2], min(step, depth), height, width), dtype=np.float32)
        while not failures:
            index = next(next_slab)
            if index >= len(starts):
                return
            z = slice(starts[index], min(starts[index] + step, depth))
            slab = buffer[:, :, : z.stop - z.start]
            source = probs[:, :, z]
            try:
                if clip is not None and source.dtype == np.float32:
                    np.clip(source, clip[0], clip[1], out=slab)  # copy and clip in one pass
                else:
                    np.copyto(slab, source, casting="same_kind")
                    if clip is not None:
                        np.clip(slab, clip[0], clip[1], out=slab)
                release_pages(source)
                out[:, z] = reduce(slab)
            except BaseException as error:  # handed to the caller's thread below
                failures.append(error)
                return

    if workers == 1:
        work()
    else:
        pool = [threading.Thread(target=work, name=f"nnactive-slabs-{i}") for i in range(workers)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    if failures:
        raise failures[0]
    return out
