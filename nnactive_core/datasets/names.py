"""Dataset names the nnU-Net way: ``4``, ``004``, ``Dataset004_Hippocampus`` and ``Hippocampus`` name
the same base dataset, a folder ``DatasetNNN_<name>`` in an nnU-Net raw (or preprocessed) folder.
One resolver serves every command that takes a dataset (``run``, ``setup``, ``grid`` and the ``data``
commands); a name that is unknown or names several datasets fails with one line listing the
candidates.

>>> parse_dataset_id("Dataset004_Hippocampus")
4
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

DATASET_FOLDER = re.compile(r"^Dataset(\d+)_(.+)$")
DATASET_ID = re.compile(r"^\d{1,4}$")
SHOWN_CANDIDATES = 8


class DatasetNameError(ValueError):
    """A dataset name, id or folder that names no dataset, or several; the message lists the
    candidates."""


def parse_dataset_id(folder_name: str) -> int | None:
    """The id of a ``DatasetNNN_<name>`` folder name; None for anything else."""
    match = DATASET_FOLDER.match(folder_name)
    return int(match.group(1)) if match else None


def dataset_folders(roots: Iterable[Path]) -> list[str]:
    """The ``DatasetNNN_<name>`` folders in ``roots`` (each listed once, sorted)."""
    names = set()
    for root in roots:
        if Path(root).is_dir():
            names.update(
                entry.name
                for entry in Path(root).iterdir()
                if entry.is_dir() and DATASET_FOLDER.match(entry.name)
            )
    return sorted(names)


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN_CANDIDATES])
    more = len(names) - SHOWN_CANDIDATES
    return shown + (f" and {more} more" if more > 0 else "") if names else "none"


def _short_name(folder_name: str) -> str:
    return DATASET_FOLDER.match(folder_name).group(2)  # type: ignore[union-attr]


def _suggestion(given: str, known: Sequence[str]) -> str:
    """``"; did you mean Dataset004_Hippocampus?"`` for a near miss of a folder or a short name."""
    by_form = {name: name for name in known} | {_short_name(name): name for name in known}
    close = difflib.get_close_matches(given, list(by_form), n=3)
    folders = list(dict.fromkeys(by_form[form] for form in close))
    return f"; did you mean {' or '.join(folders)}?" if folders else ""


def resolve_dataset_name(text: str | int, roots: Sequence[Path]) -> str:
    """The ``DatasetNNN_<name>`` folder name that ``text`` names, looked up in ``roots``.

    A full folder name is taken as given, found or not (an adapter may build it on first use, and the
    command that opens it says where it looked); an id or a short name must match exactly one folder
    (a short name ignoring case when nothing matches it exactly)."""
    given = str(text).strip()
    if DATASET_FOLDER.match(given):
        return given
    where = " or ".join(str(root) for root in roots) or "no dataset folder"
    known = dataset_folders(roots)
    if DATASET_ID.match(given):
        matches = [name for name in known if parse_dataset_id(name) == int(given)]
        what = f"id {int(given)}"
    else:
        matches = [name for name in known if _short_name(name) == given]
        if not matches:
            matches = [name for name in known if _short_name(name).lower() == given.lower()]
        what = f"name {given!r}"
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise DatasetNameError(f"dataset {what} is ambiguous in {where}: {_listing(matches)}")
    hint = _suggestion(given, known)
    raise DatasetNameError(f"no dataset with {what} in {where}; datasets there: {_listing(known)}{hint}")


def resolve_dataset_folder(text: str | int, roots: Sequence[Path]) -> Path:
    """The folder of a dataset given as a path, an id or a name (see :func:`resolve_dataset_name`).
    A value that contains a path separator, or a folder that exists and holds a ``dataset.json``, is
    a path; anything else is looked up in ``roots`` and must exist there."""
    given = str(text).strip()
    path = Path(given).expanduser()
    if "/" in given or given.startswith(".") or (path / "dataset.json").is_file():
        if not path.is_dir():
            raise DatasetNameError(f"dataset folder {path} does not exist")
        return path
    if not roots:
        raise DatasetNameError(
            f"dataset {given!r}: not a folder, and no nnU-Net raw folder is known to look it up in "
            "(set nnActive_raw or nnUNet_raw, or pass the dataset's folder)"
        )
    name = resolve_dataset_name(given, roots)
    found = next((Path(root) / name for root in roots if (Path(root) / name).is_dir()), None)
    if found is None:
        where = " or ".join(str(root) for root in roots)
        raise DatasetNameError(
            f"no dataset {name} in {where}; datasets there: {_listing(dataset_folders(roots))}"
        )
    return found
