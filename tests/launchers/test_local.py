"""The ``local`` launcher runs real subprocesses: a tiny python program stands in for ``nnactive run``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nnactive_core.launchers.api import LaunchJob
from nnactive_core.launchers.local import LocalLauncher, last_line

# Each job claims an exclusive marker (for its GPU, or a numbered slot) while it runs: a second job
# claiming the same marker at the same time fails, so over-subscription is detected without timing.
PROGRAM = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path

    shared, name, fail = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "fail"
    device = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    print(f"hello from {name} device={device} extra={os.environ.get('EXTRA', '')}", flush=True)
    running = shared / "running"
    running.mkdir(exist_ok=True)
    marker = running / name
    marker.touch()
    with open(shared / "concurrency.txt", "a") as handle:
        handle.write(f"{len(list(running.iterdir()))}\\n")
    claim = None
    if device:
        claim = shared / f"gpu-{device}"
        os.close(os.open(claim, os.O_CREAT | os.O_EXCL))
    time.sleep(0.3)
    if claim:
        claim.unlink()
    marker.unlink()
    if fail:
        print("RuntimeError: training diverged", file=sys.stderr, flush=True)
        sys.exit(3)
    """
)


def make_jobs(tmp_path: Path, names: list[str], failing: tuple[str, ...] = ()) -> list[LaunchJob]:
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    return [
        LaunchJob(
            experiment=name,
            argv=[sys.executable, str(program), str(tmp_path), name, "fail" if name in failing else "ok"],
            log_file=tmp_path / "logs" / f"{name}.log",
            env={"EXTRA": f"x-{name}"},
        )
        for name in names
    ]


def test_runs_all_jobs_with_bounded_parallelism_and_logs(tmp_path):
    names = [f"exp{i}" for i in range(5)]
    outcomes = LocalLauncher().launch(make_jobs(tmp_path, names), parallel="2")
    assert [(o.experiment, o.state) for o in outcomes] == [(name, "done") for name in names]
    concurrency = [int(line) for line in (tmp_path / "concurrency.txt").read_text().split()]
    assert len(concurrency) == 5 and max(concurrency) <= 2
    for name in names:
        log = (tmp_path / "logs" / f"{name}.log").read_text()
        assert log.startswith("# nnactive local launcher")
        assert f"hello from {name} device= extra=x-{name}" in log


def test_log_is_appended_across_attempts(tmp_path):
    jobs = make_jobs(tmp_path, ["again"])
    LocalLauncher().launch(jobs)
    LocalLauncher().launch(jobs)
    log = (tmp_path / "logs" / "again.log").read_text()
    assert log.count("hello from again") == 2


def test_failed_job_reports_exit_code_and_last_log_line(tmp_path):
    outcomes = LocalLauncher().launch(make_jobs(tmp_path, ["good", "bad"], failing=("bad",)), parallel="2")
    by_name = {o.experiment: o for o in outcomes}
    assert by_name["good"].state == "done"
    assert by_name["bad"].state == "failed"
    assert by_name["bad"].detail == "exit code 3: RuntimeError: training diverged"


def test_one_job_per_gpu(tmp_path):
    names = [f"exp{i}" for i in range(4)]
    outcomes = LocalLauncher().launch(make_jobs(tmp_path, names), gpus="3,5")
    assert all(o.state == "done" for o in outcomes), outcomes
    devices = set()
    for name in names:
        log = (tmp_path / "logs" / f"{name}.log").read_text()
        devices.add(log.split("device=")[1].split()[0])
    assert devices <= {"3", "5"}
    assert max(int(line) for line in (tmp_path / "concurrency.txt").read_text().split()) <= 2


def test_missing_program_is_a_failed_outcome(tmp_path):
    job = LaunchJob(experiment="x", argv=[str(tmp_path / "no-such-program")], log_file=tmp_path / "x.log")
    (outcome,) = LocalLauncher().launch([job])
    assert outcome.state == "failed"
    assert "could not start" in outcome.detail


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"parallel": "0"}, "must be at least 1"),
        ({"parallel": "two"}, "is not an integer"),
        ({"gpus": "0,1", "parallel": "3"}, "exceeds the 2 listed GPU"),
        ({"nodes": "2"}, "does not accept option(s) nodes"),
    ],
)
def test_bad_options_are_named(tmp_path, options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LocalLauncher().launch(make_jobs(tmp_path, ["a"]), **options)


def test_last_line_skips_blank_lines(tmp_path):
    log = tmp_path / "a.log"
    log.write_text("first\nValueError: bad patch size\n\n  \n")
    assert last_line(log) == "ValueError: bad patch size"
    assert last_line(tmp_path / "missing.log") == ""


# Runs the local launcher on jobs that record their pid and sleep, and prints what became of each when
# the launcher is interrupted.
INTERRUPTED = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from nnactive_core.launchers.api import LaunchInterrupted, LaunchJob
    from nnactive_core.launchers.local import LocalLauncher

    folder = Path(sys.argv[1])
    sleeper = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(300)"
    jobs = [
        LaunchJob(
            experiment=name,
            argv=[sys.executable, "-c", sleeper, str(folder / f"{name}.pid")],
            log_file=folder / "logs" / f"{name}.log",
        )
        for name in ("a", "b", "c")
    ]
    try:
        LocalLauncher().launch(jobs, parallel=2)
    except LaunchInterrupted as interrupted:
        print(json.dumps([[o.experiment, o.state] for o in interrupted.outcomes]))
        sys.exit(128 + interrupted.signal_number)
    """
)


def test_sigterm_stops_the_running_jobs_waits_for_them_and_reports_them_stopped(tmp_path):
    launcher = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    pid_files = [tmp_path / "a.pid", tmp_path / "b.pid"]
    deadline = time.monotonic() + 60
    while not all(path.is_file() and path.read_text() for path in pid_files):
        assert time.monotonic() < deadline and launcher.poll() is None, "the jobs did not start"
        time.sleep(0.05)
    children = [int(path.read_text()) for path in pid_files]
    launcher.send_signal(signal.SIGTERM)
    output, _ = launcher.communicate(timeout=60)
    assert launcher.returncode == 128 + signal.SIGTERM
    assert json.loads(output) == [["a", "stopped"], ["b", "stopped"], ["c", "not started"]]
    for pid in children:  # gone, not reparented to init
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (tmp_path / "c.pid").exists()
