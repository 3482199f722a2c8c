"""The SLURM submission, without SLURM: fake ``srun`` (submitit only checks it exists) and ``sbatch``
(keeps the script it is given and answers like sbatch) on PATH. The launcher goes through submitit's
real ``AutoExecutor(cluster="slurm")`` path, so the checked script is exactly what would be submitted."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from nnactive_core.launchers.api import LaunchJob
from submitit.core.utils import DelayedSubmission

from nnactive_launcher_submitit.job import ExperimentJob
from nnactive_launcher_submitit.launcher import SubmititLauncher

SBATCH = """#!/bin/sh
cp "$1" "{captured}/script_$(ls {captured} | wc -l).sh"
echo "Submitted batch job 4242"
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    bin_dir, captured = tmp_path / "bin", tmp_path / "captured"
    bin_dir.mkdir()
    captured.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "sbatch").write_text(SBATCH.format(captured=captured))
    for tool in bin_dir.iterdir():
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return captured


def jobs(tmp_path: Path, count: int) -> list[LaunchJob]:
    return [
        LaunchJob(
            experiment=f"Hippocampus__patch-20_20_20__sb-random__sbs-20__qs-20__unc-random__seed-{seed}",
            argv=["/venv/bin/nnactive", "run", "--experiment", f"exp-{seed}"],
            log_file=tmp_path / "logs" / f"exp-{seed}.log",
            env={"nnActive_data": "/shared/data"},
        )
        for seed in range(count)
    ]


def test_array_script_requests_the_resources(tmp_path, fake_slurm):
    folder = tmp_path / "submitit"
    outcomes = SubmititLauncher().launch(
        jobs(tmp_path, 3),
        folder=str(folder),
        partition="gpu-a100",
        time="1-12:00:00",
        gpus="2",
        mem="64G",
        cpus="12",
        array_parallelism="2",
        account="lab",
        setup="module load cuda/12.4; source /venv/bin/activate",
        signal_delay="300",
    )
    assert [o.state for o in outcomes] == ["submitted"] * 3
    assert [o.detail for o in outcomes] == [f"slurm job 4242_{index}" for index in range(3)]

    (script_file,) = fake_slurm.iterdir()
    script = script_file.read_text()
    lines = script.splitlines()
    for expected in (
        "#SBATCH --partition=gpu-a100",
        "#SBATCH --time=2160",
        "#SBATCH --gpus-per-node=2",
        "#SBATCH --mem=64GB",
        "#SBATCH --cpus-per-task=12",
        "#SBATCH --array=0-2%2",
        "#SBATCH --account=lab",
        "#SBATCH --signal=USR2@300",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --job-name=nnactive",
        "module load cuda/12.4; source /venv/bin/activate",
    ):
        assert expected in lines, f"{expected!r} missing from:\n{script}"
    assert any(line.startswith("srun ") and "submitit.core._submit" in line for line in lines)

    for index, job in enumerate(jobs(tmp_path, 3)):
        delayed = DelayedSubmission.load(folder / f"4242_{index}_submitted.pkl")
        task = delayed.function
        assert isinstance(task, ExperimentJob)
        assert (task.experiment, task.argv, task.log_file, task.env) == (
            job.experiment,
            job.argv,
            job.log_file,
            dict(job.env),
        )
        assert delayed._timeout_countdown == 10


def test_single_job_has_no_array_and_no_gpu_request_when_none_asked(tmp_path, fake_slurm):
    SubmititLauncher().launch(jobs(tmp_path, 1), folder=str(tmp_path / "s"), gpus="0", time="90")
    script = next(fake_slurm.iterdir()).read_text()
    assert "#SBATCH --time=90" in script.splitlines()
    assert "--array" not in script
    assert "--gpus-per-node" not in script
    assert "--partition" not in script


REFUSING_SBATCH = """#!/bin/sh
echo "sbatch: error: invalid partition specified: gpu-h100" >&2
echo "sbatch: error: Batch job submission failed: Invalid partition name specified" >&2
exit 1
"""


def test_refused_submission_is_one_line_naming_the_request(tmp_path, fake_slurm, capsys):
    (tmp_path / "bin" / "sbatch").write_text(REFUSING_SBATCH)
    with pytest.raises(RuntimeError) as refused:
        SubmititLauncher().launch(
            jobs(tmp_path, 2),
            folder=str(tmp_path / "s"),
            partition="gpu-h100",
            gpus="2",
            mem="64G",
            time="60",
        )
    assert str(refused.value) == (
        "sbatch refused the job array (partition 'gpu-h100', 60 min, 2 GPU(s), 64 GB): "
        "invalid partition specified: gpu-h100; Batch job submission failed: Invalid partition name specified"
    )
    assert capsys.readouterr().err == "", "sbatch's complaint is in the message, not printed as well"


def test_without_slurm_the_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="cannot submit to SLURM here.*cluster=local"):
        SubmititLauncher().launch(jobs(tmp_path, 1), folder=str(tmp_path / "s"))
