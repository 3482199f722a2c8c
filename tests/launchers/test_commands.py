"""The ``commands`` launcher writes one runnable, properly quoted shell line per experiment."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from nnactive_core.launchers.api import LaunchJob
from nnactive_core.launchers.commands import CommandsLauncher, command_line

# Prints its arguments and one environment variable, one per line, so the test sees exactly what
# the shell passed after parsing the written line.
ECHO = "import os, sys; print('\\n'.join(sys.argv[1:])); print('ENV=' + os.environ.get('nnActive_data', ''))"


def make_jobs(tmp_path: Path) -> list[LaunchJob]:
    awkward = tmp_path / "data dir with 'quotes' & $dollar"
    return [
        LaunchJob(
            experiment=name,
            argv=[sys.executable, "-c", ECHO, "run", "--experiment", name],
            log_file=tmp_path / "logs it" / f"{name}.log",
            env={"nnActive_data": str(awkward)},
        )
        for name in ("Hippo__patch-4_4_4__unc-random__seed-1", "Hippo__patch-4_4_4__unc-bald__seed-2")
    ]


def test_one_runnable_line_per_experiment(tmp_path):
    jobs = make_jobs(tmp_path)
    out = tmp_path / "commands.txt"
    outcomes = CommandsLauncher().launch(jobs, out=str(out))
    assert [(o.experiment, o.state, o.detail) for o in outcomes] == [
        (job.experiment, "written", str(out)) for job in jobs
    ]
    lines = out.read_text().splitlines()
    assert len(lines) == len(jobs)
    for line, job in zip(lines, jobs, strict=True):
        assert shlex.split(line) == ["env", f"nnActive_data={job.env['nnActive_data']}", *job.argv]
        run = subprocess.run(["bash", "-c", line], capture_output=True, text=True, check=True)
        assert run.stdout.splitlines() == [
            "run",
            "--experiment",
            job.experiment,
            f"ENV={job.env['nnActive_data']}",
        ]


def test_log_redirection_writes_each_experiments_log(tmp_path):
    jobs = make_jobs(tmp_path)
    out = tmp_path / "commands.txt"
    CommandsLauncher().launch(jobs, out=str(out), log="true")
    for line, job in zip(out.read_text().splitlines(), jobs, strict=True):
        subprocess.run(["bash", "-c", line], check=True)
        assert f"--experiment\n{job.experiment}\n" in job.log_file.read_text()


def test_standard_output(tmp_path, capsys):
    jobs = make_jobs(tmp_path)
    CommandsLauncher().launch(jobs, out="-")
    assert capsys.readouterr().out.splitlines() == [command_line(job) for job in jobs]


def test_no_env_prefix_without_env(tmp_path):
    job = LaunchJob(
        experiment="e", argv=["nnactive", "run", "--experiment", "e"], log_file=tmp_path / "e.log"
    )
    assert command_line(job) == "nnactive run --experiment e"


@pytest.mark.parametrize(
    ("options", "message"),
    [({}, "needs option out=FILE"), ({"out": "x", "log": "maybe"}, "log='maybe' is not true or false")],
)
def test_bad_options(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        CommandsLauncher().launch(make_jobs(tmp_path), **options)
