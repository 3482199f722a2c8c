"""Time-outs and requeues on submitit's local executor, through the launcher.

submitit's ``LocalExecutor`` simulates a scheduler's time limit for real: its controller sends the
time-out signal (USR2) ``signal_delay`` seconds before the limit, submitit calls the job's
``checkpoint``, which stops the experiment, and the controller starts the job again (exit code 144
means "requeue"). The experiment is a cheap fake that resumes from its state file; the test checks it
was interrupted and that its loop files equal those of an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nnactive_core.launchers.api import LaunchJob
from submitit.core.utils import pickle_load

from nnactive_launcher_submitit.launcher import SubmititLauncher

FAKE = Path(__file__).with_name("fake_experiment.py")
STEPS = 8


def fake_job(tmp_path: Path, name: str, seconds: float, fail_at: int = -1) -> LaunchJob:
    argv = [
        sys.executable,
        str(FAKE),
        str(tmp_path / "runs" / name),
        "--steps",
        str(STEPS),
        "--seconds",
        str(seconds),
        "--fail-at",
        str(fail_at),
    ]
    return LaunchJob(experiment=name, argv=argv, log_file=tmp_path / "logs" / f"{name}.log")


def loop_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.glob("loop_*.json"))}


def local_options(tmp_path: Path, **extra: str) -> dict[str, str]:
    # 0.15 min = 9 s limit; the time-out signal comes 4 s before it, i.e. after 5 s, while the
    # experiment needs 8 x 1 s: every job is interrupted at least once.
    return {
        "cluster": "local",
        "folder": str(tmp_path / "submitit"),
        "time": "0.15",
        "signal_delay": "4",
        "stop_grace": "2",
        "max_requeues": "5",
        "gpus": "0",
        **extra,
    }


@pytest.mark.timeout(240)
def test_timed_out_jobs_are_requeued_and_resume_to_identical_results(tmp_path):
    names = ["Toy__seed-1", "Toy__seed-2"]
    jobs = [fake_job(tmp_path, name, seconds=1.0) for name in names]
    outcomes = SubmititLauncher().launch(jobs, **local_options(tmp_path))
    assert [(o.experiment, o.state) for o in outcomes] == [(name, "done") for name in names], outcomes

    for name in names:
        run = tmp_path / "runs" / name
        attempts = (run / "attempts.txt").read_text().splitlines()
        assert len(attempts) >= 2, attempts
        assert attempts[0] == "start at step 0"
        assert any(line != "start at step 0" for line in attempts[1:]), "a requeued job must resume"
        reference = tmp_path / "reference" / name
        subprocess.run(
            [sys.executable, str(FAKE), str(reference), "--steps", str(STEPS)],
            check=True,
            capture_output=True,
        )
        assert len(loop_files(run)) == STEPS
        assert loop_files(run) == loop_files(reference)
        log = (tmp_path / "logs" / f"{name}.log").read_text()
        assert "attempt 1:" in log and "attempt 2:" in log
        assert "resuming at step" in log


def wait_for(condition, seconds: float = 90.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)


def state_step(folder: Path) -> int:
    try:
        return json.loads((folder / "state.json").read_text())["step"]
    except (OSError, ValueError):
        return 0


@pytest.mark.timeout(180)
def test_preempted_job_is_requeued_and_resumes(tmp_path):
    """Pre-emption as SLURM does it (and submitit's own ``_interrupt`` simulates it): SIGTERM to every
    process of the job, which kills the experiment, then the requeue signal to the job. The job must
    not report the dead experiment as a failure but requeue, and the experiment resume."""
    job = fake_job(tmp_path, "Toy__preempted", seconds=0.5)
    options = local_options(tmp_path, time="5", signal_delay="60", preempt_wait="30", wait="false")
    (outcome,) = SubmititLauncher().launch([job], **options)
    assert outcome.state == "submitted"
    run = tmp_path / "runs" / "Toy__preempted"
    wait_for(lambda: state_step(run) >= 2)
    pids = json.loads((run / "pids.json").read_text())
    os.kill(pids["pid"], signal.SIGTERM)
    time.sleep(0.5)
    os.kill(pids["parent"], signal.SIGUSR2)
    wait_for(lambda: list((tmp_path / "submitit").glob("*_result.pkl")))
    (result,) = (tmp_path / "submitit").glob("*_result.pkl")
    assert pickle_load(result) == ("success", "Toy__preempted")
    attempts = (run / "attempts.txt").read_text().splitlines()
    assert len(attempts) == 2 and attempts[1] != "start at step 0"
    reference = tmp_path / "reference" / "Toy__preempted"
    subprocess.run([sys.executable, str(FAKE), str(reference), "--steps", str(STEPS)], check=True)
    assert loop_files(run) == loop_files(reference) and len(loop_files(run)) == STEPS


@pytest.mark.timeout(120)
def test_job_that_times_out_too_often_fails(tmp_path):
    jobs = [fake_job(tmp_path, "Toy__slow", seconds=3.0)]
    (outcome,) = SubmititLauncher().launch(jobs, **local_options(tmp_path, max_requeues="0"))
    assert outcome.state == "failed"
    assert "timed-out too many times" in outcome.detail


@pytest.mark.timeout(120)
def test_failing_experiment_is_reported_with_its_log(tmp_path):
    jobs = [fake_job(tmp_path, "Toy__ok", seconds=0.0), fake_job(tmp_path, "Toy__bad", 0.0, fail_at=3)]
    ok, bad = SubmititLauncher().launch(jobs, **local_options(tmp_path))
    assert ok.state == "done"
    assert bad.state == "failed"
    log = tmp_path / "logs" / "Toy__bad.log"
    assert bad.detail == f"RuntimeError: Toy__bad: `nnactive run` exited with code 2; log: {log}"
    assert "ValueError: step 3 failed" in log.read_text()
