"""The callable a SLURM array task runs: one experiment's ``nnactive run`` as a subprocess.

It is a :class:`submitit.helpers.Checkpointable`. When the job nears its time limit or is pre-empted,
the scheduler sends submitit's signal (``USR2`` unless ``SUBMITIT_PREEMPT_SIGNAL`` says otherwise);
submitit then calls :meth:`ExperimentJob.checkpoint`, which stops the experiment and returns a new
submission of the same callable, and requeues the job. The requeued job simply runs
``nnactive run --experiment NAME`` again, which resumes from the experiment's own ``state.json``:
no model or optimizer state passes through submitit's pickles.

When the experiment dies of SIGTERM that did not come from :meth:`ExperimentJob.stop` (the scheduler
cancelled or pre-empted the job), the job records that in the experiment's state before it waits for
a requeue: a cancelled job ends there, and ``nnactive grid status`` then shows the experiment as
failed, for ``nnactive grid retry --failed``; a requeued one resumes and clears it.

This module is imported on the compute node when submitit unpickles the job, so at import time it
needs nothing beyond submitit and the standard library.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import submitit

from nnactive_launcher_submitit.settings import DEFAULT_PREEMPT_WAIT_S, DEFAULT_STOP_GRACE_S


def _preemption_signal() -> signal.Signals:
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return getattr(signal, f"SIG{name}", signal.SIGUSR2)


def _ignore_preemption_signal() -> None:
    """Runs in the child before exec. SLURM sends the time-limit signal to every process of the job
    step; the experiment must not die from it before submitit's handler in the parent has stopped it
    and written the checkpoint, so the child ignores it (an ignored signal stays ignored across exec)."""
    signal.signal(_preemption_signal(), signal.SIG_IGN)


def scheduler_job_id() -> str:
    """The running job's id as the scheduler names it (``4242_3`` for an array task)."""
    try:
        return submitit.JobEnvironment().job_id
    except RuntimeError:  # not inside a submitit job
        return "?"


def record_termination(experiment: str, env: Mapping[str, str], job_id: str) -> None:
    """Record in the experiment's state that job ``job_id`` stopped it with SIGTERM. Nothing is
    recorded where the experiment cannot be found, is finished, or another process holds its lock."""
    from nnactive_core.experiment.layout import LayoutError, Roots, find_experiment
    from nnactive_core.experiment.lock import ExperimentLock, LockedError
    from nnactive_core.experiment.state import StateError, load_state, save_state

    message = (
        f"stopped by SIGTERM in job {job_id} (cancelled or pre-empted): it resumes if the job is requeued, "
        "otherwise with `nnactive grid retry --failed`"
    )
    try:
        layout = find_experiment(Roots.from_env(env), experiment)
        if layout is None:
            return
        with ExperimentLock(layout.results):
            state = load_state(layout.results)
            if not state.finished:
                save_state(layout.results, state.with_error(message))
    except (LayoutError, LockedError, StateError, OSError):
        pass


class ExperimentJob(submitit.helpers.Checkpointable):
    """Runs one experiment's command line, output appended to its log file; fails when it fails."""

    def __init__(
        self,
        experiment: str,
        argv: Sequence[str],
        log_file: Path,
        env: Mapping[str, str] | None = None,
        stop_grace_s: float = DEFAULT_STOP_GRACE_S,
        preempt_wait_s: float = DEFAULT_PREEMPT_WAIT_S,
    ) -> None:
        self.experiment = experiment
        self.argv = tuple(argv)
        self.log_file = Path(log_file)
        self.env = dict(env or {})
        self.stop_grace_s = float(stop_grace_s)
        self.preempt_wait_s = float(preempt_wait_s)
        self.attempt = 0
        self._process: subprocess.Popen | None = None

    def __call__(self) -> str:
        self.attempt += 1
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            stamp = datetime.now().isoformat(timespec="seconds")
            job = scheduler_job_id()
            log.write(
                f"# nnactive submitit launcher {stamp}: job {job}, attempt {self.attempt}: "
                f"{' '.join(self.argv)}\n".encode()
            )
            log.flush()
            self._process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                preexec_fn=_ignore_preemption_signal,
                # its own process group, so that stopping it reaches nnU-Net's worker processes too
                start_new_session=True,
            )
            try:
                returncode = self._process.wait()
            finally:
                self._process = None
            if stopped_by_sigterm(returncode):
                log.write(
                    f"# job {job}: the experiment was stopped by SIGTERM (cancelled or pre-empted); "
                    f"waiting up to {self.preempt_wait_s:g} s for a requeue\n".encode()
                )
        if stopped_by_sigterm(returncode):
            # Cancellation or pre-emption: the scheduler sent SIGTERM to every process of the job and
            # the experiment died of it. After a pre-emption the requeue follows (submitit's signal,
            # or SLURM's own requeue): failing now would end the job as failed before that, so the job
            # waits; the wait ends early when submitit requeues, and a cancel kills the job during it.
            record_termination(self.experiment, {**os.environ, **self.env}, job)
            time.sleep(self.preempt_wait_s)
        if returncode != 0:
            raise RuntimeError(f"{self.experiment}: {describe_exit(returncode)}; log: {self.log_file}")
        return self.experiment

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Stop the running experiment (it resumes from its state file) and resubmit this callable."""
        self.stop()
        return super().checkpoint(*args, **kwargs)

    def stop(self) -> None:
        """SIGTERM to the experiment's process group, SIGKILL after the grace period. A step cut short
        is redone on resume: the experiment writes each step's outputs atomically and records the step
        only when it is done.

        This runs inside submitit's signal handler, which interrupted ``Popen.wait`` in
        :meth:`__call__` while it holds the Popen's internal lock; so the child is signalled and reaped
        with ``os`` calls, never through the Popen object (that would deadlock)."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + self.stop_grace_s
        while time.monotonic() < deadline and not _reaped(process.pid):
            time.sleep(0.1)
        try:
            # whatever is left of the group (workers that outlived the experiment) goes too
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(process.pid, 0)
        except ChildProcessError:
            pass

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_process"] = None
        return state

    def __repr__(self) -> str:
        return f"ExperimentJob({self.experiment!r})"


def _reaped(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] != 0
    except ChildProcessError:
        return True


def stopped_by_sigterm(returncode: int) -> bool:
    """Whether ``nnactive run`` ended by SIGTERM: killed by it, or (since it handles SIGTERM as a
    resumable stop) exited with the shell's code for it, 128 + 15."""
    return returncode in (-signal.SIGTERM, 128 + signal.SIGTERM)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"`nnactive run` was killed by {name}"
    return f"`nnactive run` exited with code {returncode}"
