"""Files as nnactive reads and writes them: atomic writes (a reader, or a run killed mid-write, never
sees a half-written file) and the one JSON reader, whose errors name the file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

JSON_KINDS = {dict: "object", list: "array"}


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


def atomic_write_with(path: Path, writer: Callable[[Path], None], suffix: str = "") -> None:
    """Let ``writer`` fill a temporary file beside ``path``, then move it into place.

    ``suffix`` keeps the file type recognisable for writers that choose the format from the name
    (SimpleITK needs ``.nii.gz``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        # mkstemp creates owner-only files; results are shared with colleagues like any other file
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_with(path, lambda tmp: tmp.write_text(text))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write_with(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
