"""A probability stack in float32 slabs along Z, for strategies that score in numpy on the CPU.

A strategy that sets ``accepts_numpy`` gets the stack as the engine has it: a float16 or float32
numpy array, possibly a memory map of a stack larger than the memory bound (prediction spills those
to disk, ``nnactive query`` maps ``.npy`` files). :func:`map_slabs` walks such a stack in slabs of a
few Z slices: each is copied (and clipped, if asked) into a float32 buffer of its thread, reduced by
the strategy's function, and written into the result. So a case never needs more than its result and
one slab per thread, a slab stays in the CPU cache for every pass the strategy makes over it, and the
threads (:func:`nnactive_core.threads.thread_budget`) work on whole slabs, never waiting on each other
inside one.

A memory map of a file is read with plain positioned reads (:class:`SlabSource`), not through the
map: touching a map makes the kernel map whole page-cache folios around each access (megabytes on a
recent kernel), so a slab's worth of reads would make most of a stack resident. Read this way, a
spilled stack costs the page cache, never this process's memory.
"""

from __future__ import annotations

import itertools
import mmap
import os
import threading
from collections.abc import Callable

import numpy as np

from nnactive_core.threads import thread_budget

CPU_SLAB_BYTES = 2 * 2**20
"""float32 bytes of one slab on the CPU: within the last-level cache, large enough that numpy's
per-call cost stays small against the work on the slab."""


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
    """Drop every page of the memory map behind ``array`` from this process's resident set; the data
    stays in the page cache. Does nothing for arrays in RAM."""
    mapping = getattr(array, "_mmap", None)
    if mapping is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    try:
        mapping.madvise(mmap.MADV_DONTNEED)
    except (OSError, ValueError):  # a closed mapping; releasing is only an optimisation
        return


def _file_position(array: np.ndarray) -> tuple[str, int] | None:
    """``(file, byte position of the first element)`` of a C-contiguous view of a file's memory map,
    else None."""
    mapping, filename = getattr(array, "_mmap", None), getattr(array, "filename", None)
    if mapping is None or filename is None or not array.flags.c_contiguous:
        return None
    try:
        base = np.frombuffer(mapping, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError):  # a closed mapping
        return None
    # np.memmap maps from the allocation boundary below its offset; a view's offset attribute is
    # the original map's, so the view's own position comes from its address
    mapped_from = array.offset - array.offset % mmap.ALLOCATIONGRANULARITY
    return filename, mapped_from + (array.ctypes.data - base)


class SlabSource:
    """Reads Z slabs of a members x classes x Z x Y x X stack into a caller's buffer: a memory map of a
    file by positioned reads (thread-safe, releasing the GIL), any other array by slicing."""

    def __init__(self, probs: np.ndarray):
        self.shape = tuple(probs.shape)
        self.dtype = probs.dtype
        # plain views: numpy functions called on a np.memmap allocate a temporary the size of the map
        self._values = np.asarray(probs)
        self._probs = probs
        place = _file_position(probs)
        self._fd = None if place is None else os.open(place[0], os.O_RDONLY)
        self._position = None if place is None else place[1]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SlabSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def read(self, z: slice, out: np.ndarray) -> np.ndarray:
        """``probs[:, :, z]`` into ``out`` (members x classes x at least the slab depth x Y x X, the
        stack's dtype, each (member, class) block contiguous); returns the filled view."""
        depth = z.stop - z.start
        slab = out[:, :, :depth]
        if self._fd is None:
            np.copyto(slab, self._values[:, :, z])
            release_pages(self._probs)
            return slab
        members, classes, total, height, width = self.shape
        plane = height * width * self.dtype.itemsize
        for member, klass in np.ndindex(members, classes):
            target = memoryview(slab[member, klass]).cast("B")
            position = self._position + ((member * classes + klass) * total + z.start) * plane
            if os.preadv(self._fd, [target], position) != depth * plane:
                raise OSError(f"short read from the probability file at byte {position}")
        return slab

    def float32(
        self, z: slice, buffer: np.ndarray, staging: np.ndarray, clip: tuple[float, float] | None
    ) -> np.ndarray:
        """``probs[:, :, z]`` as float32 in ``buffer`` (``staging``, in the stack's dtype, is the
        buffer itself for a float32 stack), clipped to ``clip`` when given."""
        slab = buffer[:, :, : z.stop - z.start]
        if self._fd is None and clip is not None and self.dtype == np.float32:
            np.clip(self._values[:, :, z], clip[0], clip[1], out=slab)  # copy and clip in one pass
            release_pages(self._probs)
            return slab
        read = self.read(z, staging)
        if staging is not buffer:
            np.copyto(slab, read, casting="same_kind")
        if clip is not None:
            np.clip(slab, clip[0], clip[1], out=slab)
        return slab


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
    members, classes, depth, height, width = probs.shape
    out = np.empty((channels, depth, height, width), dtype=np.float32)
    step = min(slab_depth(probs.shape, slab_bytes), depth)
    starts = range(0, depth, step)
    workers = max(1, min(thread_budget() if threads is None else int(threads), len(starts)))
    next_slab = itertools.count()
    failures: list[BaseException] = []

    def work(source: SlabSource) -> None:
        buffer = np.empty((members, classes, step, height, width), dtype=np.float32)
        staging = buffer if source.dtype == np.float32 else np.empty(buffer.shape, dtype=source.dtype)
        while not failures:
            index = next(next_slab)
            if index >= len(starts):
                return
            z = slice(starts[index], min(starts[index] + step, depth))
            try:
                out[:, z] = reduce(source.float32(z, buffer, staging, clip))
            except BaseException as error:  # handed to the caller's thread below
                failures.append(error)
                return

    with SlabSource(probs) as source:
        if workers == 1:
            work(source)
        else:
            pool = [
                threading.Thread(target=work, args=(source,), name=f"nnactive-slabs-{i}")
                for i in range(workers)
            ]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
    if failures:
        raise failures[0]
    return out
