"""Which SLURM job runs which experiment, and ``active_jobs`` telling ``nnactive grid run`` which
stopped experiments the scheduler still holds (so they are not submitted a second time)."""

from __future__ import annotations

from nnactive_launcher_submitit import records
from nnactive_launcher_submitit.launcher import SubmititLauncher


def test_job_ids_are_recorded_per_experiment_and_the_last_submission_wins(tmp_path):
    assert records.recorded_jobs(tmp_path) == {}
    records.record_jobs(tmp_path, {"a": "11", "b": "12"})
    records.record_jobs(tmp_path, {"b": "13_0"})
    assert records.recorded_jobs(tmp_path) == {"a": "11", "b": "13_0"}


def test_an_unreadable_record_counts_as_no_record(tmp_path):
    (tmp_path / records.JOBS_FILE).write_text("{not json")
    assert records.recorded_jobs(tmp_path) == {}


def test_only_experiments_whose_job_the_scheduler_still_holds_are_active(tmp_path, monkeypatch):
    records.record_jobs(tmp_path, {"pending": "1", "requeued": "2", "ended": "3", "timed-out": "4"})
    states = {"1": "PENDING", "2": "REQUEUED", "3": "COMPLETED", "4": "TIMEOUT"}
    monkeypatch.setattr(records, "slurm_state", lambda folder, job: states[job])
    active = SubmititLauncher().active_jobs(
        ["pending", "requeued", "ended", "timed-out", "never-submitted"], folder=str(tmp_path)
    )
    assert active == {"pending": "slurm job 1 is PENDING", "requeued": "slurm job 2 is REQUEUED"}


def test_the_local_executor_holds_no_job_after_its_grid_run(tmp_path, monkeypatch):
    records.record_jobs(tmp_path, {"a": "1"})
    monkeypatch.setattr(records, "slurm_state", lambda folder, job: "PENDING")
    assert SubmititLauncher().active_jobs(["a"], folder=str(tmp_path), cluster="local") == {}
