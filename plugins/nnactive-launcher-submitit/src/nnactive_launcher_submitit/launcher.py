"""The ``submitit`` launcher: a grid becomes one SLURM job array (``--array=0-N%P``), one task per
experiment. Tasks that hit their time limit or are pre-empted are requeued by submitit and resume
from the experiment's own state."""

from __future__ import annotations

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
        submitted = executor.submit_array(callables)
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
    def _result(job: LaunchJob, submitted) -> JobOutcome:
        try:
            submitted.result()
        except Exception as error:  # submitit re-raises whatever ended the job; report, never crash
            return JobOutcome(experiment=job.experiment, state="failed", detail=error_summary(error))
        return JobOutcome(experiment=job.experiment, state="done", detail=f"job {submitted.job_id}")
