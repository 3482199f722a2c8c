"""Files as nnactive reads and writes them: atomic writes (a reader, or a run killed mid-write, never
sees a half-written file; a full disk is reported as such, naming the file), the one JSON reader, whose
errors name the file, and the one containment rule for every path built from file content.

``NNACTIVE_TEST_KILL_AT=<point>`` makes the process SIGKILL itself at a named point (see
:func:`kill_point`); the resume tests use it to stop a run precisely mid-step. An atomic write offers
the point ``write:<folder>/<file>`` with its temporary file complete but not yet moved into place.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

JSON_KINDS = {dict: "object", list: "array"}
KILL_ENV = "NNACTIVE_TEST_KILL_AT"
TEMP_FILE_PATTERN = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\..+)?$")
"""What :func:`atomic_write_with` names its temporary files: ``.<name>.<8 random>.tmp[<suffix>]``."""


def kill_point(name: str) -> None:
    """SIGKILL this process when ``NNACTIVE_TEST_KILL_AT`` names this point (testing resumption)."""
    if os.environ.get(KILL_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class UnsafePathError(ValueError):
    """A name read from a file that would lead out of the folder it must stay in; the message names
    where the name came from."""


def contained(folder: Path, name: str | Path, *, source: str) -> Path:
    """``folder / name`` for a relative ``name`` read from a file (``source`` says which file and
    field), refused when it could leave ``folder``: absolute, empty, with a ``..`` part, a backslash or
    a NUL. The check is on the name, not on the file system, so folders that are symlinks by design
    (an experiment's ``imagesTr``) still work; :func:`resolves_inside` checks links."""
    text = str(name)
    parts = Path(text).parts
    if not text or "\0" in text or "\\" in text or Path(text).is_absolute() or ".." in parts:
        raise UnsafePathError(f"{source}: {text!r} would lead outside {folder}; refused")
    return Path(folder) / text


def plain_name(name: str, *, source: str) -> str:
    """``name`` when it is a single file name (what loop files, manifests and configs store as case and
    file names): no folder part, not ``.`` or ``..``."""
    if not isinstance(name, str) or "/" in name or name in (".", ".."):
        raise UnsafePathError(f"{source}: {name!r} is not a plain file name; refused")
    contained(Path("."), name, source=source)
    return name


def resolves_inside(folder: Path, path: Path) -> bool:
    """Whether ``path``, symlinks followed, lies inside ``folder`` (symlinks followed too)."""
    try:
        return Path(path).resolve().is_relative_to(Path(folder).resolve())
    except (OSError, RuntimeError):
        return False


class JsonFileError(ValueError):
    """A JSON file that cannot be used (missing, unreadable, not JSON, or not the kind of value
    expected); the message starts with the file."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def read_json(path: Path, *, expect: type | None = None, missing: str = "missing") -> Any:
    """The JSON value stored in ``path``; with ``expect`` (``dict`` or ``list``) it must be one.

    Every failure raises :class:`JsonFileError` naming the file; ``missing`` is the reason given when
    the file does not exist (a hint at what creates it)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise JsonFileError(path, missing) from None
    except (OSError, UnicodeDecodeError) as error:
        raise JsonFileError(path, f"unreadable: {error}") from None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise JsonFileError(path, f"not valid JSON: {error}") from None
    if expect is not None and not isinstance(value, expect):
        raise JsonFileError(path, f"expected a JSON {JSON_KINDS.get(expect, expect.__name__)}")
    return value


def current_umask() -> int:
    """The process umask (reading it needs setting it; it is restored at once)."""
    current = os.umask(0)
    os.umask(current)
    return current


def share_by_umask(folder: Path) -> None:
    """Give ``folder`` and everything in it the permissions the umask gives any new file: temporary
    files and folders are created owner-only, but results are shared like any other file."""
    umask = current_umask()
    Path(folder).chmod(0o777 & ~umask)
    for path in Path(folder).rglob("*"):
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


FULL_DISK_BYTES = 1 << 20
"""Less room than this when a write fails counts as a full disk."""


class DiskFullError(OSError):
    """No space left on the device while writing ``path``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        super().__init__(errno.ENOSPC, f"no space left on device while writing {path}")

    def __str__(self) -> str:
        return self.strerror


def disk_full(error: BaseException, folder: Path) -> bool:
    """Whether ``error`` is a full disk: ENOSPC, or a library's own error (torch, SimpleITK) raised
    while the file system of ``folder`` has no room left."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if not isinstance(error, RuntimeError | OSError):
        return False
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < FULL_DISK_BYTES


def atomic_write_with(path: Path, writer: Callable[[Path], None], suffix: str = "") -> None:
    """Let ``writer`` fill a temporary file beside ``path``, then move it into place. A full disk
    raises :class:`DiskFullError` naming ``path``; the temporary file is removed either way.

    ``suffix`` keeps the file type recognisable for writers that choose the format from the name
    (SimpleITK needs ``.nii.gz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    except OSError as error:
        if disk_full(error, path.parent):
            raise DiskFullError(path) from error
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        kill_point(f"write:{path.parent.name}/{path.name}")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        # mkstemp creates owner-only files; results are shared with colleagues like any other file
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException as error:
        # judged before the temporary file goes, which frees the room it took
        full = disk_full(error, path.parent)
        tmp.unlink(missing_ok=True)
        if full:
            raise DiskFullError(path) from error
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_with(path, lambda tmp: tmp.write_text(text))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write_with(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def remove_temp_files(folders: Iterable[Path]) -> list[Path]:
    """Remove the temporary files that atomic writes killed mid-way left in ``folders`` and below
    (never following symlinked folders out of them); returns what was removed."""
    removed = []
    for folder in folders:
        if not Path(folder).is_dir():
            continue
        for root, subfolders, files in os.walk(folder):
            subfolders[:] = [s for s in subfolders if not Path(root, s).is_symlink()]
            for name in files:
                if TEMP_FILE_PATTERN.match(name):
                    path = Path(root) / name
                    path.unlink(missing_ok=True)
                    removed.append(path)
    return removed
