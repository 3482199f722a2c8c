"""One live run per experiment: ``lock.json`` records pid, host, boot and process start time.

A lock whose process is gone (killed, even with SIGKILL, or the machine rebooted) is stale and taken
over silently; a lock held by a live process refuses the second run with a message naming it. The
start time guards against pid reuse: a new process with the old pid has another start time.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import attrs

from nnactive_core.experiment.layout import LOCK_FILE
from nnactive_core.io import JsonFileError, read_json


class LockedError(RuntimeError):
    """The experiment is being run by a live process."""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None when no such process.
    Outside Linux only liveness can be checked and the start time is empty."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and Path("/proc/self/stat").exists():
        try:
            text = stat.read_text()
        except OSError:
            return None
        # the command name (field 2) may hold spaces and parentheses: split after the last ')'
        fields = text[text.rindex(")") + 2 :].split()
        if fields[0] in ("Z", "X"):  # a killed process not yet reaped by its parent is dead
            return None
        return fields[19]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return ""


@attrs.frozen(kw_only=True)
class LockOwner:
    pid: int
    host: str
    boot_id: str
    start_time: str
    since: float
    command: str = ""

    @classmethod
    def current(cls) -> LockOwner:
        pid = os.getpid()
        return cls(
            pid=pid,
            host=socket.gethostname(),
            boot_id=_boot_id(),
            start_time=process_start_time(pid) or "",
            since=time.time(),
            command=" ".join(sys.argv),
        )

    def is_alive(self) -> bool | None:
        """True/False for a process on this host; None when it runs elsewhere (cannot be checked)."""
        if self.host != socket.gethostname():
            return None
        if self.boot_id and self.boot_id != _boot_id():
            return False
        start = process_start_time(self.pid)
        if start is None:
            return False
        return not (self.start_time and start and start != self.start_time)

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} on {self.host} (since {started}: {self.command or 'unknown command'})"


def _read(path: Path) -> LockOwner | None:
    if not path.exists():
        return None
    try:
        return LockOwner(**read_json(path, expect=dict))
    except (JsonFileError, TypeError):
        # unreadable lock: its writer died before the rename, which cannot happen with link(); treat
        # a damaged file as stale rather than blocking the experiment forever
        return None


@attrs.define
class ExperimentLock:
    """Context manager around ``lock.json`` in the experiment's results folder."""

    folder: Path
    owner: LockOwner | None = None

    @property
    def path(self) -> Path:
        return Path(self.folder) / LOCK_FILE

    def acquire(self) -> None:
        me = LockOwner.current()
        payload = json.dumps(attrs.asdict(me), indent=2) + "\n"
        tmp = self.path.with_name(f".{LOCK_FILE}.{me.pid}.tmp")
        tmp.write_text(payload)
        try:
            for _ in range(3):
                try:
                    # link() fails if the lock exists: creation is atomic and the content complete
                    os.link(tmp, self.path)
                    self.owner = me
                    return
                except FileExistsError:
                    holder = _read(self.path)
                    if holder is not None and holder.pid == me.pid and holder.host == me.host:
                        self.owner = me
                        return
                    alive = holder.is_alive() if holder is not None else False
                    if alive is None:
                        raise LockedError(
                            f"experiment {Path(self.folder).name} is locked by {holder.describe()}, "
                            f"another host; if that run is gone, delete {self.path}"
                        ) from None
                    if alive:
                        raise LockedError(
                            f"experiment {Path(self.folder).name} is already running: {holder.describe()}"
                        ) from None
                    self._remove_stale(holder)
            raise LockedError(f"could not take the lock {self.path}: it keeps changing")
        finally:
            tmp.unlink(missing_ok=True)

    def _remove_stale(self, holder: LockOwner | None) -> None:
        """Remove a dead holder's lock, but only if it is still that holder's (another process may
        have taken it over in between)."""
        if _read(self.path) == holder:
            self.path.unlink(missing_ok=True)

    def release(self) -> None:
        if self.owner is not None and _read(self.path) == self.owner:
            self.path.unlink(missing_ok=True)
        self.owner = None

    def __enter__(self) -> ExperimentLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_holder(folder: Path) -> LockOwner | None:
    """The live holder of an experiment's lock, None when unlocked or stale."""
    holder = _read(Path(folder) / LOCK_FILE)
    if holder is None or holder.is_alive() is False:
        return None
    return holder
