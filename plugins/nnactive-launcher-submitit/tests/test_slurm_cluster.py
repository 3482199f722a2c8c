"""On a real Slurm cluster (marker ``slurm``): ``tools/slurm-up`` starts a one-node one on this machine.

One grid of two tiny real experiments (``pred_entropy``, whose loop files depend on the trained
models, and ``random``; two loops each) runs through the real ``nnactive grid`` command line, once with
the ``local`` launcher as the reference and once as a Slurm job array. On the cluster, the
``pred_entropy`` task is made to reach its Slurm time limit while it trains (its limit is lowered
with ``scontrol``; Slurm then sends submitit's USR2 and submitit requeues the task), and the
``random`` task is cancelled with ``scancel`` after its first training, then picked up by
``nnactive grid retry --failed``. Both must end with the reference's loop files, and Slurm's own
accounting (``sacct``, ``scontrol show job``) must show where and how they ran. A second, cheap array
(two stand-in experiments on the GPU partition, one task at a time) checks that slurmctld accepts the
requested resources and that a waiting launch reports a cancelled task.

Without Slurm the tests skip; with ``NNACTIVE_SLURM_REQUIRED=1`` (set by ``.ci/run``, which starts
the cluster first) they fail instead.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest
from nnactive_core.experiment.layout import ExperimentLayout, Roots, list_experiments
from nnactive_core.experiment.state import STEPS, StateError, load_state
from nnactive_core.launchers.api import LaunchJob

from nnactive_launcher_submitit.launcher import SubmititLauncher

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]

REQUIRED_ENV = "NNACTIVE_SLURM_REQUIRED"
FAKE = Path(__file__).with_name("fake_experiment.py")
NNACTIVE = Path(sys.executable).parent / "nnactive"
SCORE_STRATEGY, OTHER_STRATEGY = "pred_entropy", "random"
GRID_TOML = """\
[grid]
datasets = ["Dataset900_Demo"]
strategies = ["pred_entropy", "random"]
seeds = [7]

[experiment]
dataset_adapter = "demo"
dataset_options = { n_cases = 8, n_validation = 2, size = 32 }
patch_size = [4, 8, 8]
query_size = 10
query_steps = 2
folds = 2
train_folds = 1
agg_stride = [2, 2, 2]
training_profile = "tiny"
training_overrides = { epochs = 3, iterations_per_epoch = 100, val_iterations_per_epoch = 0, \
patch_size = [16, 16, 16] }
val_mirroring = false
"""
# slurmctld checks time limits every 30 s, so the time-out signal comes up to 30 s after it is due:
# the two trainings (300 iterations each, about 30 s on a fast core) keep the pred_entropy task
# running well past that after the limit is lowered in its first training
# submitit tells a time-out from a pre-emption by the time the task ran: at least
# min(80 %, limit - 10 min) of the limit it was submitted with. With 10 min that is any time, so the
# lowered limit below counts as the time-out it is (with 20 min it would count as a pre-emption).
TIME_MIN = 10
# USR2 comes this long before the limit: the lowered limit below is at least 60 s away, so the
# signal is due at once (slurmctld sends it within its 30 s check) and the task has left time to stop
SIGNAL_DELAY_S = 150
TIMEOUT_S = 900
# CPU training is reproducible for one thread count: the reference runs as the Slurm tasks do (sbatch
# exports the submitting environment), or 300 iterations drift apart enough to change the query
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


# --- the cluster -----------------------------------------------------------------------------


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}")
    return result


def cluster_problem() -> str | None:
    """Why Slurm cannot be used here, or None."""
    if shutil.which("sbatch") is None or shutil.which("sacct") is None:
        return "no Slurm here (sbatch/sacct not found); tools/slurm-up starts a one-node cluster"
    ping = run("scontrol", "ping", check=False)
    if ping.returncode != 0 or "is UP" not in ping.stdout:
        return f"slurmctld does not answer `scontrol ping`: {(ping.stdout + ping.stderr).strip()}"
    accounting = run("sacct", "-n", "-X", "-S", "now", check=False)
    if accounting.returncode != 0:
        return f"no Slurm accounting (sacct: {accounting.stderr.strip()}); tools/slurm-up sets it up"
    return None


@attrs.frozen(kw_only=True)
class Cluster:
    default_partition: str
    gpu_partition: str | None
    job_name: str
    """Every job of this test session carries it, so nothing else on the cluster is touched."""


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    problem = cluster_problem()
    if problem is not None:
        if os.environ.get(REQUIRED_ENV):
            pytest.fail(f"{REQUIRED_ENV} is set, but {problem}")
        pytest.skip(problem)
    partitions = [line for line in run("sinfo", "-h", "-o", "%P %G").stdout.splitlines() if line.strip()]
    default = next(line.split()[0].rstrip("*") for line in partitions if line.split()[0].endswith("*"))
    gpu = next((line.split()[0].rstrip("*") for line in partitions if "gpu:" in line), None)
    cluster = Cluster(
        default_partition=default, gpu_partition=gpu, job_name=f"nnactive-test-{uuid.uuid4().hex[:8]}"
    )
    yield cluster
    run("scancel", "--name", cluster.job_name, check=False)


def sacct(job: str) -> list[dict[str, str]]:
    """Slurm's accounting records of ``job`` (an array task ``12_0``), requeued runs included."""
    fields = "JobID,State,NodeList,Partition,Timelimit,ReqCPUS,ReqMem,AllocTRES,Start,End"
    lines = run("sacct", "-D", "-X", "-n", "-P", "-j", job, "-o", fields).stdout.splitlines()
    return [dict(zip(fields.split(","), line.split("|"), strict=True)) for line in lines if line]


def scontrol_job(job: str) -> dict[str, str]:
    text = run("scontrol", "show", "job", "-o", job).stdout
    return dict(re.findall(r"(\S+?)=(\S*)", text))


def wait_for(condition: Callable[[], object], what: str, seconds: float = TIMEOUT_S, explain=None):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {seconds:g} s waiting for {what}" + (explain() if explain else "")
            )
        time.sleep(0.5)


def final_states(job: str) -> list[str]:
    """The states of every run of ``job`` (``CANCELLED by 0`` -> ``CANCELLED``), once the last run
    ended; empty before."""
    states = [record["State"].split()[0] for record in sacct(job)]
    return states if states and states[-1] not in {"PENDING", "RUNNING", "REQUEUED"} else []


# --- the grid --------------------------------------------------------------------------------


def nnactive(arguments: list[str], roots: Roots, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    """The installed ``nnactive`` command line."""
    env = {**os.environ, **roots.env(), **ONE_THREAD, "COLUMNS": "250"}
    return subprocess.run(
        [str(NNACTIVE), *arguments], env=env, capture_output=True, text=True, timeout=timeout
    )


def slurm_options(cluster: Cluster, folder: Path) -> list[str]:
    options = {
        "partition": cluster.default_partition,
        "time": str(TIME_MIN),
        "cpus": "1",
        "mem": "3G",
        "gpus": "0",
        "array_parallelism": "2",
        "signal_delay": str(SIGNAL_DELAY_S),
        "stop_grace": "20",
        "job_name": cluster.job_name,
        "folder": str(folder),
    }
    return ["--launcher", "submitit", *[f"--option={key}={value}" for key, value in options.items()]]


def loop_files(layout: ExperimentLayout) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(layout.raw.glob("loop_*.json"))}


def by_strategy(roots: Roots) -> dict[str, ExperimentLayout]:
    return {
        json.loads((layout.results / "config.json").read_text())["strategy"]: layout
        for layout in list_experiments(roots)
    }


def progress(layout: ExperimentLayout) -> tuple[int, int] | None:
    """(loop, step number) the experiment's state is at, in the order the steps run."""
    try:
        state = load_state(layout.results)
    except StateError:
        return None
    return point(state.loop, state.step)


def point(loop: int, step: str) -> tuple[int, int]:
    return loop, STEPS.index(step)


def jobs_of(layout: ExperimentLayout, log_folder: Path) -> list[tuple[str, int]]:
    """(job id, attempt) of every start the launcher wrote into the experiment's log."""
    log = log_folder / f"{layout.name}.log"
    text = log.read_text() if log.is_file() else ""
    return [(job, int(attempt)) for job, attempt in re.findall(r": job (\S+), attempt (\d+):", text)]


def run_starts(layout: ExperimentLayout) -> list[tuple[int, int]]:
    """(loop, step number) at which each ``nnactive run`` of the experiment started."""
    text = (layout.results / "log.txt").read_text()
    return [point(int(loop), step) for loop, step in re.findall(r"run: loop (\d+), step (\w+),", text)]


def statuses(grid_file: Path, roots: Roots) -> dict[str, dict]:
    result = nnactive(["grid", "status", str(grid_file), "--json"], roots, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return {record["experiment"]: record for record in json.loads(result.stdout)}


def running_seconds(job: str) -> int:
    """How long ``job`` has been running, from ``RunTime=[D-]HH:MM:SS``."""
    days, _, clock = scontrol_job(job)["RunTime"].rpartition("-")
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds


@attrs.frozen(kw_only=True)
class GridRuns:
    grid_file: Path
    local: dict[str, ExperimentLayout]
    slurm: dict[str, ExperimentLayout]
    logs: Path
    submitit_folder: Path
    submitted: subprocess.CompletedProcess
    status_after_cancel: dict
    retried: subprocess.CompletedProcess
    final_status: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def grid(cluster, tmp_path_factory) -> GridRuns:
    base = tmp_path_factory.mktemp("slurm-grid")
    grid_file = base / "grid.toml"
    grid_file.write_text(GRID_TOML)
    # both runs share the base dataset, which the reference plans once
    local = Roots(raw=base / "raw", data=base / "local", results=base / "local")
    slurm = Roots(raw=base / "raw", data=base / "slurm", results=base / "slurm")
    output = base / "reference.txt"
    with open(output, "w") as out:
        reference = subprocess.Popen(
            [str(NNACTIVE), "grid", "run", str(grid_file), "--launcher", "local", "--option=parallel=2"],
            env={**os.environ, **local.env(), **ONE_THREAD, "COLUMNS": "250"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        runs = grid_on_the_cluster(cluster, base, grid_file, local, slurm, reference)
        reference.wait(timeout=TIMEOUT_S)
    finally:
        if reference.poll() is None:
            reference.kill()
            reference.wait()
    assert reference.returncode == 0, output.read_text()
    return runs


def grid_on_the_cluster(cluster, base, grid_file, local, slurm, reference) -> GridRuns:
    """The Slurm run of the grid, started once the reference planned the base dataset: it overlaps
    with the rest of the reference, which fills the time Slurm holds a requeued task."""

    def planned() -> bool:
        experiments = list_experiments(local)
        assert reference.poll() in (None, 0), (base / "reference.txt").read_text()
        return len(experiments) == 2 and all(
            (progress(e) or point(0, "setup")) > point(0, "setup") for e in experiments
        )

    wait_for(planned, "the reference to plan the base dataset")
    options = slurm_options(cluster, base / "submitit")
    submitted = nnactive(["grid", "run", str(grid_file), *options], slurm, timeout=120)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    experiments = by_strategy(slurm)
    timed_out, cancelled = experiments[SCORE_STRATEGY], experiments[OTHER_STRATEGY]
    logs = slurm.results / "logs"

    def explain() -> str:
        return "".join(
            f"\n--- {layout.name}: state {progress(layout)}, log:\n"
            + ((logs / f"{layout.name}.log").read_text() if (logs / f"{layout.name}.log").is_file() else "")
            for layout in (timed_out, cancelled)
        )

    # the time limit: lowered while the task trains, so that Slurm signals it right away
    wait_for(lambda: progress(timed_out) == point(0, "train"), "pred_entropy to train", explain=explain)
    (job, _), *_ = jobs_of(timed_out, logs)
    limit = math.ceil((running_seconds(job) + 60) / 60)
    run("scontrol", "update", f"JobId={job}", f"TimeLimit={limit}")

    # the cancel: once the random experiment's first model is trained
    wait_for(lambda: jobs_of(cancelled, logs), "the random experiment's job", explain=explain)
    past_training = {point(0, step) for step in ("validate", "query", "annotate")}
    past_training |= {point(1, step) for step in ("preprocess", "train")}

    def trained() -> bool:
        now = progress(cancelled)
        assert now is None or now <= max(past_training), f"random ran on to {now} before the cancel"
        return now in past_training

    wait_for(trained, "random past training", explain=explain)
    (cancelled_job, _), *_ = jobs_of(cancelled, logs)
    run("scancel", cancelled_job)

    # requeued after its time limit. Its limit goes back up, or the rerun would be signalled at once
    # again. Once pending, Slurm holds a requeued job for two minutes (against requeue storms): the
    # test releases it at once
    def requeued() -> bool:
        shown = scontrol_job(job)
        assert shown["JobState"] != "COMPLETED", "pred_entropy finished before Slurm signalled it"
        return (shown["Restarts"], shown["JobState"]) == ("1", "PENDING")

    wait_for(requeued, "the requeue", explain=explain)
    run("scontrol", "update", f"JobId={job}", f"TimeLimit={TIME_MIN}", "StartTime=now")

    name = cancelled.folder
    wait_for(
        lambda: statuses(grid_file, slurm)[name]["state"] == "failed", "the cancel to show", explain=explain
    )
    status_after_cancel = statuses(grid_file, slurm)
    retried = nnactive(["grid", "retry", "--failed", str(grid_file), *options], slurm, timeout=120)
    assert retried.returncode == 0, retried.stdout + retried.stderr

    def all_done() -> bool:
        return all(record["state"] == "done" for record in statuses(grid_file, slurm).values())

    wait_for(all_done, "every experiment to finish", explain=explain)
    return GridRuns(
        grid_file=grid_file,
        local=by_strategy(local),
        slurm=experiments,
        logs=logs,
        submitit_folder=base / "submitit",
        submitted=submitted,
        status_after_cancel=status_after_cancel,
        retried=retried,
        final_status=nnactive(["grid", "status", str(grid_file)], slurm, timeout=120),
    )


@pytest.mark.timeout(2400)
def test_grid_runs_to_the_end_on_the_cluster_with_the_local_launchers_loop_files(grid):
    assert grid.submitted.stdout.count("submitted") == 2 and "slurm job" in grid.submitted.stdout
    assert grid.final_status.returncode == 0
    assert "2 experiments: 2 done" in grid.final_status.stdout, grid.final_status.stdout
    for strategy in (SCORE_STRATEGY, OTHER_STRATEGY):
        local, slurm = grid.local[strategy], grid.slurm[strategy]
        files = loop_files(slurm)
        assert sorted(files) == ["loop_000.json", "loop_001.json"]
        assert files == loop_files(local), f"{strategy}: loop files differ from the local launcher's"
    # the score strategy's query follows the models: it picks other patches than random does
    assert (
        loop_files(grid.slurm[SCORE_STRATEGY])["loop_001.json"]
        != loop_files(grid.slurm[OTHER_STRATEGY])["loop_001.json"]
    )
    node = run("sinfo", "-h", "-o", "%N").stdout.split()[0]
    for layout in grid.slurm.values():
        for job, _ in jobs_of(layout, grid.logs):
            records = wait_for(lambda job=job: final_states(job) and sacct(job), f"accounting of {job}")
            assert {record["NodeList"] for record in records} == {node}


@pytest.mark.timeout(2400)
def test_task_reaching_its_time_limit_is_requeued_once_and_resumes(grid):
    layout = grid.slurm[SCORE_STRATEGY]
    jobs = jobs_of(layout, grid.logs)
    (job, first), (again, second) = jobs
    assert (again, first, second) == (job, 1, 2), jobs
    assert wait_for(lambda: final_states(job), f"accounting of {job}") == ["REQUEUED", "COMPLETED"]
    shown = scontrol_job(job)
    assert (shown["JobState"], shown["Restarts"]) == ("COMPLETED", "1")
    # submitit's own log of the task: the time-out signal caught, the checkpoint taken, the requeue
    submitit_log = "".join(
        (grid.submitit_folder / f"{job}_0_log.{stream}").read_text() for stream in ("out", "err")
    )
    assert "Caught signal SIGUSR2" in submitit_log and "this job is timed-out" in submitit_log, submitit_log
    assert f"Requeued job {job}" in submitit_log
    log = (grid.logs / f"{layout.name}.log").read_text()
    assert "(cancelled or pre-empted)" not in log, "submitit's stop is no cancel"
    starts = run_starts(layout)
    assert len(starts) == 2 and starts[0] == point(0, "setup")
    assert starts[1] >= point(0, "train"), "the requeued task must resume from the experiment's state"
    assert loop_files(layout) == loop_files(grid.local[SCORE_STRATEGY])


@pytest.mark.timeout(2400)
def test_cancelled_task_is_picked_up_by_retry_failed(grid):
    layout = grid.slurm[OTHER_STRATEGY]
    (cancelled, first), (retried, again) = jobs_of(layout, grid.logs)
    assert cancelled != retried and first == again == 1
    assert wait_for(lambda: final_states(cancelled), f"accounting of {cancelled}") == ["CANCELLED"]
    assert wait_for(lambda: final_states(retried), f"accounting of {retried}") == ["COMPLETED"]
    record = grid.status_after_cancel[layout.folder]
    assert record["state"] == "failed"
    assert record["detail"].startswith(f"stopped by SIGTERM in job {cancelled} (cancelled or pre-empted)")
    assert grid.status_after_cancel[grid.slurm[SCORE_STRATEGY].folder]["state"] != "failed"
    assert "skipping 1 experiment" in grid.retried.stderr, grid.retried.stderr
    starts = run_starts(layout)
    assert len(starts) == 2 and starts[1] > point(0, "train"), "the retry must resume after the trained model"
    assert loop_files(layout) == loop_files(grid.local[OTHER_STRATEGY])


@pytest.mark.timeout(2400)
def test_sbatch_options_of_the_grid_are_what_slurm_ran(grid, cluster):
    for layout in grid.slurm.values():
        for job, _ in jobs_of(layout, grid.logs):
            shown = scontrol_job(job)
            assert shown["Partition"] == cluster.default_partition
            assert (shown["NumCPUs"], shown["MinMemoryNode"]) == ("1", "3G")
            assert shown["TimeLimit"] == f"00:{TIME_MIN}:00"
            assert shown["JobName"] == cluster.job_name
            assert "gres/gpu" not in shown["TRES"]
    (job, _), *_ = jobs_of(grid.slurm[SCORE_STRATEGY], grid.logs)
    assert scontrol_job(job.split("_")[0])["ArrayTaskThrottle"] == "2"


def test_invalid_partition_is_one_line_naming_it(cluster, tmp_path):
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(GRID_TOML)
    roots = Roots(raw=tmp_path / "raw", data=tmp_path / "data", results=tmp_path / "data")
    options = [*slurm_options(cluster, tmp_path / "submitit"), "--option=partition=no-such-partition"]
    result = nnactive(["grid", "run", str(grid_file), *options], roots, timeout=300)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "Error: launcher submitit: sbatch refused the job array (partition 'no-such-part"
    )
    assert "Invalid partition name specified" in lines[0]


# --- a GPU partition, one task at a time, and a waiting launch ---------------------------------


@attrs.frozen(kw_only=True)
class GpuArray:
    outcomes: list
    folder: Path
    jobs: list[LaunchJob]


@pytest.fixture(scope="module")
def gpu_array(cluster, tmp_path_factory) -> GpuArray:
    """Two stand-in experiments on the GPU partition, one at a time (``array_parallelism=1``), with
    ``wait=true``; the second is cancelled while it runs."""
    if cluster.gpu_partition is None:
        message = "no partition with GPUs (tools/slurm-up --fake-gpus 1 declares one)"
        if os.environ.get(REQUIRED_ENV):
            pytest.fail(f"{REQUIRED_ENV} is set, but {message}")
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("slurm-gpu")
    jobs = [
        LaunchJob(
            experiment=name,
            argv=[
                sys.executable,
                str(FAKE),
                str(folder / "runs" / name),
                "--steps",
                str(steps),
                "--seconds",
                "1",
            ],
            log_file=folder / "logs" / f"{name}.log",
        )
        for name, steps in (("Toy__first", 3), ("Toy__cancelled", 120))
    ]
    options = {
        "partition": cluster.gpu_partition,
        "gpus": "1",
        "cpus": "1",
        "mem": "500M",
        "time": "5",
        "array_parallelism": "1",
        "signal_delay": "60",
        "stop_grace": "10",
        "preempt_wait": "30",
        "job_name": cluster.job_name,
        "folder": str(folder / "submitit"),
        "wait": "true",
    }
    outcomes: list = []
    launch = threading.Thread(target=lambda: outcomes.extend(SubmititLauncher().launch(jobs, **options)))
    launch.start()
    second = folder / "runs" / "Toy__cancelled" / "state.json"
    wait_for(second.is_file, "the second task to run", seconds=300)
    run(
        "scancel",
        next(path.name.split("_submitted")[0] for path in (folder / "submitit").glob("*_1_submitted.pkl")),
    )
    launch.join(timeout=300)
    assert not launch.is_alive(), "the waiting launch did not return after the cancel"
    return GpuArray(outcomes=outcomes, folder=folder, jobs=jobs)


@pytest.mark.timeout(900)
def test_gpu_request_is_granted_as_gres_one_task_at_a_time(gpu_array, cluster):
    first, _ = gpu_array.outcomes
    assert first.state == "done", first
    array = first.detail.removeprefix("job ").split("_")[0]
    records = [
        wait_for(lambda task=task: final_states(f"{array}_{task}") and sacct(f"{array}_{task}"), "accounting")
        for task in (0, 1)
    ]
    (done,), (cancelled,) = records
    for record in (done, cancelled):
        assert record["Partition"] == cluster.gpu_partition
        assert "gres/gpu=1" in record["AllocTRES"] and "cpu=1" in record["AllocTRES"]
        assert (record["ReqCPUS"], record["ReqMem"], record["Timelimit"]) == ("1", "500M", "00:05:00")
    assert cancelled["Start"] >= done["End"], "array_parallelism=1 runs one task at a time"
    assert scontrol_job(array)["ArrayTaskThrottle"] == "1"
    assert (gpu_array.folder / "runs" / "Toy__first" / "gpus.txt").read_text() == "0"


@pytest.mark.timeout(900)
def test_waiting_launch_reports_the_cancelled_task(gpu_array):
    _, cancelled = gpu_array.outcomes
    assert cancelled.state == "failed"
    assert re.fullmatch(r"job \d+_1 ended without a result \(state CANCELLED.*\)", cancelled.detail), (
        cancelled
    )
