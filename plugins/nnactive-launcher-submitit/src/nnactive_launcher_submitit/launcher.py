"""The ``submitit`` launcher: a grid becomes one SLURM job array (``--array=0-N%P``), one task per
experiment. Tasks that hit their time limit or are pre-empted are requeued by submitit and resume
from the experiment's own state."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

from nnactive_core.launchers.api import JobOutcome, Launcher, LaunchJob

from nnactive_launcher_submitit.settings import OPTIONS, SubmititSettings


def error_summary(error: BaseException) -> str:
    """One line from submitit's job error: the last line of the job's traceback when there is one
    (it names the experiment and its log), otherwise the message's first line."""
    lines = str(error).splitlines()
    rules = [index for index, line in enumerate(lines) if line.startswith("-" * 10)]
    if len(rules) >= 2:
        trace = [line.strip() for line in lines[rules[0] + 1 : rules[1]] if line.strip()]
        if trace:
            return trace[-1]
    first = next((line.strip() for line in lines if line.strip()), "")
    return f"{type(error).__name__}: {first}"


def refusal_summary(stderr: str) -> str:
    """sbatch's error lines as one: ``sbatch: error: invalid partition specified: gpu`` and
    ``sbatch: error: Batch job submission failed: Invalid partition name specified`` become
    ``invalid partition specified: gpu; Batch job submission failed: Invalid partition name specified``."""
    reasons = []
    for line in stderr.splitlines():
        reason = line.strip().removeprefix("sbatch:").strip().removeprefix("error:").strip()
        if reason and reason not in reasons:
            reasons.append(reason)
    return "; ".join(reasons) or "no reason given"


class SubmititLauncher(Launcher):
    name = "submitit"
    description = (
        "SLURM job arrays through submitit; jobs that time out or are pre-empted are requeued and resume."
    )
    options = OPTIONS

    def launch(self, jobs: Sequence[LaunchJob], **options) -> list[JobOutcome]:
        self.validate_options(options)
        settings = SubmititSettings.from_options(options)
        if not jobs:
            return []
        from nnactive_launcher_submitit.job import ExperimentJob

        executor = settings.make_executor()
        callables = [
            ExperimentJob(
                experiment=job.experiment,
                argv=job.argv,
                log_file=job.log_file,
                env=job.env,
                stop_grace_s=settings.stop_grace_s,
                preempt_wait_s=settings.preempt_wait_s,
            )
            for job in jobs
        ]
        for job in jobs:
            job.log_file.parent.mkdir(parents=True, exist_ok=True)
        submitted = self._submit(executor, callables, settings)
        if not settings.wait:
            return [
                JobOutcome(
                    experiment=job.experiment,
                    state="submitted",
                    detail=f"{settings.cluster} job {sub.job_id}",
                )
                for job, sub in zip(jobs, submitted, strict=True)
            ]
        return [self._result(job, sub) for job, sub in zip(jobs, submitted, strict=True)]

    @staticmethod
    def _submit(executor, callables: list, settings: SubmititSettings) -> list:
        """``submit_array``; a submission the scheduler refuses raises one line naming what was asked.
        submitit prints sbatch's complaint to stderr before it raises: that goes into the line."""
        from submitit.core.utils import FailedJobError

        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                return executor.submit_array(callables)
        except FailedJobError as error:
            raise RuntimeError(
                f"sbatch refused the job array ({settings.describe_request()}): "
                f"{refusal_summary(str(error) or stderr.getvalue())}"
            ) from None

    @staticmethod
    def _result(job: LaunchJob, submitted) -> JobOutcome:
        from submitit.core.utils import FailedJobError, UncompletedJobError

        try:
            submitted.result()
        except FailedJobError as error:  # the job raised: its trace names the experiment and its log
            return JobOutcome(experiment=job.experiment, state="failed", detail=error_summary(error))
        except UncompletedJobError:  # killed from outside (scancel, out of memory): no result, no trace
            detail = f"job {submitted.job_id} ended without a result (state {submitted.state})"
            return JobOutcome(experiment=job.experiment, state="failed", detail=detail)
        except Exception as error:  # submitit re-raises whatever ended the job; report, never crash
            return JobOutcome(experiment=job.experiment, state="failed", detail=error_summary(error))
        return JobOutcome(experiment=job.experiment, state="done", detail=f"job {submitted.job_id}")
