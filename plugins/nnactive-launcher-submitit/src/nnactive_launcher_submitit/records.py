"""Which SLURM job runs which experiment: ``nnactive_jobs.json`` in the launcher's submitit folder,
updated at every submission, so that a later ``nnactive grid run`` can ask the scheduler whether an
experiment's job is still queued (pending, requeued, running) and leave it alone instead of submitting
it a second time."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from nnactive_core.io import JsonFileError, atomic_write_json, read_json

JOBS_FILE = "nnactive_jobs.json"
ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RUNNING",
        "CONFIGURING",
        "COMPLETING",
        "SUSPENDED",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
    }
)
"""sacct states of a job the scheduler still holds: it runs, or will run (again)."""


def recorded_jobs(folder: Path) -> dict[str, str]:
    """Experiment -> the id of the job last submitted for it (empty when nothing was recorded)."""
    try:
        payload = read_json(Path(folder) / JOBS_FILE, expect=dict)
    except JsonFileError:
        return {}
    return {str(name): str(job) for name, job in payload.items() if isinstance(job, str | int)}


def record_jobs(folder: Path, jobs: Mapping[str, str]) -> None:
    """Add (or replace) the job ids of the experiments in ``jobs``."""
    atomic_write_json(Path(folder) / JOBS_FILE, {**recorded_jobs(folder), **dict(jobs)})


def slurm_state(folder: Path, job_id: str) -> str:
    """The scheduler's state of ``job_id`` (submitit asks ``sacct``; ``UNKNOWN`` when it cannot)."""
    import submitit

    return str(submitit.SlurmJob(folder=folder, job_id=job_id).state).split()[0].upper()
