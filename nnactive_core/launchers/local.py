"""The ``local`` launcher: runs experiments on this machine, a few at a time, as subprocesses.

Each job's output (stdout and stderr) is appended to its log file, so a resumed experiment keeps
the history of its earlier attempts. With ``gpus=0,1`` every running job gets one of the listed
devices through ``CUDA_VISIBLE_DEVICES`` and at most one job runs per device.

SIGTERM or Ctrl-C to the launcher stops every running job the same way (SIGTERM, SIGKILL after a grace
period), waits for them and raises :class:`~nnactive_core.launchers.api.LaunchInterrupted` with each
job's outcome: ``stopped`` for the interrupted ones, which resume from their own state.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO

import attrs

from nnactive_core.experiment.signals import describe, signal_number, terminate_as_interrupt
from nnactive_core.launchers.api import JobOutcome, Launcher, LaunchInterrupted, LaunchJob

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 30.0


def parse_positive_int(launcher: str, option: str, value: object) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise ValueError(f"launcher {launcher!r}: option {option}={value!r} is not an integer") from None
    if number < 1:
        raise ValueError(f"launcher {launcher!r}: option {option}={value!r} must be at least 1")
    return number


def parse_devices(value: object) -> tuple[str, ...]:
    """``"0,1"`` -> ``("0", "1")``; an empty value means no device assignment."""
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


def last_line(path: Path) -> str:
    """The last non-empty line of a log file: usually the error that ended the run."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            tail = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1] if lines else ""


@attrs.define
class _Running:
    job: LaunchJob
    process: subprocess.Popen
    log: IO[bytes]
    device: str | None


def _start(job: LaunchJob, device: str | None) -> _Running:
    job.log_file.parent.mkdir(parents=True, exist_ok=True)
    log = open(job.log_file, "ab")  # closed in _outcome or _stop_all
    stamp = datetime.now().isoformat(timespec="seconds")
    log.write(f"# nnactive local launcher {stamp}: {' '.join(job.argv)}\n".encode())
    log.flush()
    env = {**os.environ, **job.env}
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device
    try:
        process = subprocess.Popen(job.argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    except BaseException:
        log.close()
        raise
    logger.info("started %s (pid %d)%s", job.experiment, process.pid, f" on GPU {device}" if device else "")
    return _Running(job=job, process=process, log=log, device=device)


def _outcome(running: _Running, returncode: int) -> JobOutcome:
    running.log.close()
    name = running.job.experiment
    if returncode == 0:
        logger.info("finished %s", name)
        return JobOutcome(experiment=name, state="done")
    detail = f"exit code {returncode}"
    reason = last_line(running.job.log_file)
    if reason:
        detail += f": {reason}"
    logger.warning("failed %s: %s (log: %s)", name, detail, running.job.log_file)
    return JobOutcome(experiment=name, state="failed", detail=detail)


def _stop_all(running: list[_Running]) -> None:
    """Interrupted launcher: ask every child to stop (it resumes later from its own state), then kill
    whatever is still alive after the grace period, or at once on a second interrupt."""
    for entry in running:
        if entry.process.poll() is None:
            entry.process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    try:
        for entry in running:
            try:
                entry.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                entry.process.kill()
    finally:
        for entry in running:
            if entry.process.poll() is None:
                entry.process.kill()
            entry.process.wait()
            entry.log.close()


def _stopped(running: _Running, why: str) -> JobOutcome:
    name = running.job.experiment
    if running.process.returncode == 0:
        logger.info("finished %s", name)
        return JobOutcome(experiment=name, state="done")
    logger.warning("stopped %s (%s)", name, why)
    return JobOutcome(
        experiment=name, state="stopped", detail=f"stopped by {why}; `nnactive grid run` resumes it"
    )


def run_local(jobs: Sequence[LaunchJob], parallel: int, devices: Sequence[str] = ()) -> list[JobOutcome]:
    """Run ``jobs`` with at most ``parallel`` at once (and at most one per device if ``devices``);
    outcomes come back in the order of ``jobs``."""
    slots = list(devices) if devices else [None] * parallel
    slots = slots[:parallel]
    pending = list(enumerate(jobs))
    running: dict[int, _Running] = {}
    outcomes: dict[int, JobOutcome] = {}
    try:
        with terminate_as_interrupt():
            _run_all(pending, running, outcomes, slots)
    except KeyboardInterrupt as interrupt:
        why = describe(interrupt)
        _stop_all(list(running.values()))
        for index, entry in running.items():
            outcomes[index] = _stopped(entry, why)
        for index, job in pending:
            outcomes[index] = JobOutcome(
                experiment=job.experiment, state="not started", detail=f"{why} came before its start"
            )
        ordered = [outcomes[index] for index in sorted(outcomes)]
        raise LaunchInterrupted(ordered, signal_number(interrupt)) from None
    except BaseException:
        _stop_all(list(running.values()))
        raise
    return [outcomes[index] for index in range(len(jobs))]


def _run_all(
    pending: list[tuple[int, LaunchJob]],
    running: dict[int, _Running],
    outcomes: dict[int, JobOutcome],
    slots: list[str | None],
) -> None:
    """Start jobs while slots are free, collect the finished ones, until none is left."""
    while pending or running:
        while pending and slots:
            index, job = pending.pop(0)
            device = slots.pop(0)
            try:
                running[index] = _start(job, device)
            except OSError as error:
                slots.insert(0, device)
                outcomes[index] = JobOutcome(
                    experiment=job.experiment,
                    state="failed",
                    detail=f"could not start {job.argv[0]}: {error}",
                )
        for index, entry in list(running.items()):
            returncode = entry.process.poll()
            if returncode is not None:
                outcomes[index] = _outcome(entry, returncode)
                slots.append(entry.device)
                del running[index]
        if running:
            time.sleep(POLL_SECONDS)


class LocalLauncher(Launcher):
    name = "local"
    description = "Run experiments on this machine, N at a time, each as a subprocess with its own log file."
    options = {
        "parallel": "how many experiments run at once (default 1, or the number of listed GPUs)",
        "gpus": "comma-separated GPU ids, e.g. 0,1: one running experiment per GPU via CUDA_VISIBLE_DEVICES",
    }

    def launch(self, jobs: Sequence[LaunchJob], **options) -> list[JobOutcome]:
        self.validate_options(options)
        parallel, devices = self.settings(options)
        return run_local(jobs, parallel, devices)

    def settings(self, options: Mapping[str, object]) -> tuple[int, tuple[str, ...]]:
        devices = parse_devices(options.get("gpus", ""))
        default = len(devices) if devices else 1
        parallel = parse_positive_int(self.name, "parallel", options.get("parallel", default))
        if devices and parallel > len(devices):
            raise ValueError(
                f"launcher {self.name!r}: parallel={parallel} exceeds the {len(devices)} listed GPU(s) "
                f"{','.join(devices)}; one experiment runs per GPU"
            )
        return parallel, devices
