"""How many threads each step of a loop uses, chosen from the cores this process may use.

The budget is ``OMP_NUM_THREADS`` when the user set it (their choice wins everywhere), otherwise the
cores of :func:`usable_cores`: the CPUs of the process's affinity mask (``taskset``, a Slurm
allocation, a container's cpuset), bounded by a cgroup CPU quota (``docker --cpus``, Kubernetes
limits), which torch's own default ignores. Steps never use more threads than that budget, and a
step that starts worker processes gives each worker one thread, so nothing is oversubscribed.

- Training and ensemble prediction (torch): :func:`torch_threads` sets torch's intra-op threads to
  the budget for the step and restores the previous value after it.
- Scoring on the CPU (numpy, see :mod:`nnactive_core.strategies.slabs`): the budget, as a pool of
  threads over slabs of the probability stack (numpy releases the GIL inside its loops, and coarse
  slabs leave the threads nothing to wait for, unlike a parallel loop per operation).
- The query on the CPU (:mod:`nnactive_core.query.engine`): small cases go through the engine on
  the budget's threads at once, each case on one thread (:func:`limited`); a large case alone, its
  steps on the whole budget.

docs/performance.md lists the choices.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")

_LIMIT: ContextVar[int | None] = ContextVar("nnactive_thread_limit", default=None)


def _quota_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int | None:
    """Cores a cgroup v2 CPU quota allows (``quota period`` in ``cpu.max``, rounded up); None without
    a quota."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def usable_cores() -> int:
    """CPUs this process may run on: its affinity mask, bounded by a cgroup CPU quota."""
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    quota = _quota_cores()
    return max(1, min(cores, quota) if quota else cores)


def thread_budget() -> int:
    """Threads one step may use: ``OMP_NUM_THREADS`` when set to a positive integer, else
    :func:`usable_cores`; at most the limit of :func:`limited` in the calling thread."""
    exported = os.environ.get("OMP_NUM_THREADS", "").strip()
    try:
        value = int(exported.split(",")[0]) if exported else 0
    except ValueError:
        value = 0
    budget = value if value > 0 else usable_cores()
    limit = _LIMIT.get()
    return budget if limit is None else max(1, min(budget, limit))


@contextmanager
def limited(count: int) -> Iterator[int]:
    """Steps run in this thread inside the block use at most ``count`` threads: a worker that shares
    the budget with others gives its steps only its share."""
    count = max(1, int(count))
    token = _LIMIT.set(count)
    try:
        yield count
    finally:
        _LIMIT.reset(token)


@contextmanager
def torch_threads(count: int | None = None) -> Iterator[int]:
    """torch's intra-op threads set to ``count`` (default :func:`thread_budget`) inside the block,
    restored after it. Imports torch: use only in steps that run torch anyway."""
    import torch

    count = thread_budget() if count is None else max(1, int(count))
    previous = torch.get_num_threads()
    if count != previous:
        torch.set_num_threads(count)
    try:
        yield count
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
