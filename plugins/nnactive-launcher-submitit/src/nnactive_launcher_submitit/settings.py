"""The launcher's options (``--option key=value`` strings) checked and turned into a submitit
executor: SLURM through ``AutoExecutor(cluster="slurm")``, or submitit's ``LocalExecutor`` to try the
same submission, time-out and requeue path on one machine."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

import attrs

LAUNCHER = "submitit"
CLUSTERS = ("slurm", "local")
DEFAULT_TIME_MIN = 24 * 60.0
DEFAULT_SIGNAL_DELAY_S = 180
DEFAULT_STOP_GRACE_S = 60.0
DEFAULT_PREEMPT_WAIT_S = 300.0
DEFAULT_MAX_REQUEUES = 10
DEFAULT_ARRAY_PARALLELISM = 256

OPTIONS = {
    "cluster": "slurm (default) or local (submitit's local executor, to try time-outs and requeues here)",
    "folder": "submitit's folder for job pickles and scheduler logs, on a shared file system "
    "(default $nnActive_results/submitit)",
    "partition": "SLURM partition",
    "time": "time limit per job: minutes, or [D-]HH:MM:SS as sbatch takes it (default 24:00:00); "
    "an experiment that hits it is requeued and resumes",
    "gpus": "GPUs per job (default 1)",
    "gpus_per_node": "the same as gpus, under submitit's own name (Slurm --gpus-per-node, a GRES request)",
    "mem": "memory per job, in GB or with a unit: 64, 64G, 500M",
    "cpus": "CPUs per job (data loading and augmentation of nnU-Net)",
    "array_parallelism": "how many array tasks run at once (the %N of --array; default 256)",
    "account": "SLURM account",
    "qos": "SLURM quality of service",
    "constraint": "SLURM node constraint (e.g. a GPU type)",
    "setup": "shell line run before the job, e.g. 'module load cuda; source ~/venv/bin/activate'",
    "job_name": "SLURM job name (default nnactive)",
    "signal_delay": "seconds before the time limit at which the job is stopped and requeued (default 180)",
    "stop_grace": "seconds the experiment gets to stop before it is killed (default 60)",
    "preempt_wait": "seconds a job whose experiment was killed by SIGTERM waits for the requeue of a "
    "pre-emption before it reports a failure (default 300)",
    "max_requeues": "how often one job may be requeued after hitting its time limit (default 10)",
    "wait": "true: wait for all jobs and report done/failed (default: true for local, false for slurm)",
}

_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([gmt]?)b?\s*$", re.IGNORECASE)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _error(option: str, value: object, message: str) -> ValueError:
    return ValueError(f"launcher {LAUNCHER!r}: option {option}={value!r} {message}")


def parse_time_minutes(value: object) -> float:
    """Minutes from sbatch's time formats: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``."""
    text = str(value).strip()
    try:
        days, _, rest = text.rpartition("-") if "-" in text else ("0", "", text)
        parts = [float(part) for part in rest.split(":")]
        day_minutes = float(days) * 24 * 60
    except ValueError:
        raise _error("time", value, "is not a time: use minutes or [D-]HH:MM:SS") from None
    if len(parts) > 3 or any(part < 0 for part in parts) or day_minutes < 0:
        raise _error("time", value, "is not a time: use minutes or [D-]HH:MM:SS")
    if "-" in text:
        hours, minutes, seconds = (parts + [0.0, 0.0])[:3]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    else:
        hours, (minutes, seconds) = 0.0, (parts + [0.0])[:2]
    total = day_minutes + hours * 60 + minutes + seconds / 60
    if total <= 0:
        raise _error("time", value, "must be positive")
    return total


def parse_memory_gb(value: object) -> float:
    match = _MEMORY.match(str(value))
    if not match:
        raise _error("mem", value, "is not a memory size: use GB (64) or a unit (64G, 500M, 1T)")
    amount, unit = float(match[1]), match[2].lower()
    gigabytes = amount / 1024 if unit == "m" else amount * 1024 if unit == "t" else amount
    if gigabytes <= 0:
        raise _error("mem", value, "must be positive")
    return gigabytes


def _int(option: str, value: object, minimum: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise _error(option, value, "is not an integer") from None
    if number < minimum:
        raise _error(option, value, f"must be at least {minimum}")
    return number


def _seconds(option: str, value: object) -> float:
    try:
        number = float(str(value).strip())
    except ValueError:
        raise _error(option, value, "is not a number of seconds") from None
    if number < 0:
        raise _error(option, value, "must not be negative")
    return number


def _flag(option: str, value: object) -> bool:
    word = str(value).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _error(option, value, "is not true or false")


def _text(value: object) -> str | None:
    text = str(value).strip()
    return text or None


def default_folder(env: Mapping[str, str]) -> Path:
    results = env.get("nnActive_results") or env.get("nnActive_data")
    return (Path(results) if results else Path.cwd()) / "submitit"


@attrs.frozen(kw_only=True)
class SubmititSettings:
    cluster: str = "slurm"
    folder: Path
    job_name: str = "nnactive"
    partition: str | None = None
    time_min: float = DEFAULT_TIME_MIN
    gpus: int = 1
    mem_gb: float | None = None
    cpus: int | None = None
    array_parallelism: int = DEFAULT_ARRAY_PARALLELISM
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: str | None = None
    signal_delay_s: int = DEFAULT_SIGNAL_DELAY_S
    stop_grace_s: float = DEFAULT_STOP_GRACE_S
    preempt_wait_s: float = DEFAULT_PREEMPT_WAIT_S
    max_requeues: int = DEFAULT_MAX_REQUEUES
    wait: bool = False

    @classmethod
    def from_options(
        cls, options: Mapping[str, object], env: Mapping[str, str] | None = None
    ) -> SubmititSettings:
        env = os.environ if env is None else env
        cluster = str(options.get("cluster", "slurm")).strip().lower()
        if cluster not in CLUSTERS:
            raise _error("cluster", options["cluster"], f"is not one of {', '.join(CLUSTERS)}")
        get = options.get
        if "gpus_per_node" in options:
            if "gpus" in options and str(options["gpus"]).strip() != str(options["gpus_per_node"]).strip():
                raise _error(
                    "gpus_per_node", options["gpus_per_node"], f"contradicts gpus={options['gpus']!r}"
                )
            options = {**options, "gpus": options["gpus_per_node"]}
            get = options.get
        settings = cls(
            cluster=cluster,
            folder=Path(str(get("folder"))).expanduser() if _text(get("folder", "")) else default_folder(env),
            job_name=_text(get("job_name", "")) or "nnactive",
            partition=_text(get("partition", "")),
            time_min=parse_time_minutes(get("time")) if _text(get("time", "")) else DEFAULT_TIME_MIN,
            gpus=_int("gpus", get("gpus", 1), 0),
            mem_gb=parse_memory_gb(get("mem")) if _text(get("mem", "")) else None,
            cpus=_int("cpus", get("cpus"), 1) if _text(get("cpus", "")) else None,
            array_parallelism=_int(
                "array_parallelism", get("array_parallelism", DEFAULT_ARRAY_PARALLELISM), 1
            ),
            account=_text(get("account", "")),
            qos=_text(get("qos", "")),
            constraint=_text(get("constraint", "")),
            setup=_text(get("setup", "")),
            signal_delay_s=_int("signal_delay", get("signal_delay", DEFAULT_SIGNAL_DELAY_S), 1),
            stop_grace_s=_seconds("stop_grace", get("stop_grace", DEFAULT_STOP_GRACE_S)),
            preempt_wait_s=_seconds("preempt_wait", get("preempt_wait", DEFAULT_PREEMPT_WAIT_S)),
            max_requeues=_int("max_requeues", get("max_requeues", DEFAULT_MAX_REQUEUES), 0),
            wait=_flag("wait", get("wait", cluster == "local")),
        )
        if settings.stop_grace_s >= settings.signal_delay_s:
            raise _error(
                "stop_grace",
                options.get("stop_grace", DEFAULT_STOP_GRACE_S),
                f"must be shorter than signal_delay ({settings.signal_delay_s} s), or the scheduler "
                "kills the job before it is requeued",
            )
        if settings.signal_delay_s >= settings.time_min * 60:
            raise _error(
                "signal_delay",
                settings.signal_delay_s,
                f"must be shorter than the time limit ({settings.time_min * 60:g} s)",
            )
        return settings

    def slurm_parameters(self) -> dict[str, object]:
        """``AutoExecutor.update_parameters`` arguments; sbatch takes whole minutes."""
        parameters: dict[str, object] = {
            "name": self.job_name,
            "timeout_min": max(1, math.ceil(self.time_min)),
            "nodes": 1,
            "tasks_per_node": 1,
            "gpus_per_node": self.gpus or None,
            "cpus_per_task": self.cpus,
            "mem_gb": self.mem_gb,
            "slurm_partition": self.partition,
            "slurm_array_parallelism": self.array_parallelism,
            "slurm_signal_delay_s": self.signal_delay_s,
            "slurm_account": self.account,
            "slurm_qos": self.qos,
            "slurm_constraint": self.constraint,
            "slurm_setup": [self.setup] if self.setup else None,
        }
        return {key: value for key, value in parameters.items() if value is not None}

    def describe_request(self) -> str:
        """What each task asks the scheduler for, for error messages: ``partition 'gpu', 1440 min,
        1 GPU(s), 64 GB, 12 CPU(s)``."""
        parts = [f"partition {self.partition!r}" if self.partition else "default partition"]
        parts.append(f"{self.time_min:g} min")
        parts.append(f"{self.gpus} GPU(s)")
        if self.mem_gb is not None:
            parts.append(f"{self.mem_gb:g} GB")
        if self.cpus is not None:
            parts.append(f"{self.cpus} CPU(s)")
        parts += [
            f"{name} {value!r}"
            for name, value in (("account", self.account), ("qos", self.qos), ("constraint", self.constraint))
            if value
        ]
        return ", ".join(parts)

    def local_parameters(self) -> dict[str, object]:
        parameters: dict[str, object] = {
            "timeout_min": self.time_min,
            "signal_delay_s": self.signal_delay_s,
            "tasks_per_node": 1,
            "gpus_per_node": self.gpus,
        }
        if self.setup:
            parameters["setup"] = [self.setup]
        return parameters

    def make_executor(self):
        """The submitit executor these settings describe."""
        import submitit

        if self.cluster == "local":
            executor = submitit.LocalExecutor(self.folder, max_num_timeout=self.max_requeues)
            executor.update_parameters(**self.local_parameters())
            return executor
        try:
            executor = submitit.AutoExecutor(
                self.folder, cluster="slurm", slurm_max_num_timeout=self.max_requeues
            )
        except RuntimeError as error:
            raise RuntimeError(
                f"launcher {LAUNCHER!r}: cannot submit to SLURM here ({error}); run on a SLURM login node, "
                "or use --option cluster=local to try the launcher on this machine"
            ) from None
        executor.update_parameters(**self.slurm_parameters())
        return executor
