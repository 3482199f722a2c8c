import json
import os
import socket
import subprocess
import sys

import attrs
import pytest

from nnactive_core.experiment.layout import LOCK_FILE
from nnactive_core.experiment.lock import (
    ExperimentLock,
    LockedError,
    LockOwner,
    lock_holder,
    process_start_time,
)

HOLD = (
    "import sys, time; from nnactive_core.experiment.lock import ExperimentLock; "
    "l = ExperimentLock(sys.argv[1]); l.acquire(); print('locked', flush=True); time.sleep(60)"
)


def test_acquire_and_release(tmp_path):
    with ExperimentLock(tmp_path) as lock:
        payload = json.loads((tmp_path / LOCK_FILE).read_text())
        assert payload["pid"] == os.getpid()
        assert lock_holder(tmp_path) == lock.owner
    assert not (tmp_path / LOCK_FILE).exists()
    assert lock_holder(tmp_path) is None


def test_a_live_run_refuses_a_second_one(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError, match=f"already running: pid {holder.pid} on"):
            ExperimentLock(tmp_path).acquire()
        assert lock_holder(tmp_path).pid == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_run_is_stale(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    holder.kill()  # SIGKILL: no clean-up ran, the lock file stays
    holder.wait()
    assert (tmp_path / LOCK_FILE).exists()
    assert lock_holder(tmp_path) is None
    with ExperimentLock(tmp_path) as lock:
        assert lock.owner.pid == os.getpid()


def test_a_reused_pid_with_another_start_time_is_stale(tmp_path):
    # this process's pid, recorded with another start time: the recorded process is gone
    forged = attrs.evolve(LockOwner.current(), start_time="1")
    (tmp_path / LOCK_FILE).write_text(json.dumps(attrs.asdict(forged)))
    assert forged.is_alive() is False
    assert lock_holder(tmp_path) is None


def test_a_lock_from_another_host_refuses_with_a_hint(tmp_path):
    owner = LockOwner(pid=1, host=socket.gethostname() + "-elsewhere", boot_id="", start_time="", since=0.0)
    (tmp_path / LOCK_FILE).write_text(json.dumps(attrs.asdict(owner)))
    with pytest.raises(LockedError, match="another host; if that run is gone, delete"):
        ExperimentLock(tmp_path).acquire()


def test_a_damaged_lock_is_taken_over(tmp_path):
    (tmp_path / LOCK_FILE).write_text("{not json")
    with ExperimentLock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_start_time_of_missing_process():
    assert process_start_time(os.getpid()) not in (None, "")
    assert process_start_time(2**22 + 12345) is None
