"""Validation of an nnU-Net raw dataset: every problem found, each naming its file.

Levels: ``structure`` reads only ``dataset.json`` and the folder listings; ``headers`` also reads every
image header (shape, spacing, origin, direction); ``full`` also reads every voxel (corrupt files, NaNs,
label values that ``dataset.json`` does not declare)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import attrs
import numpy as np

from nnactive_core.datasets.api import NOT_FREE
from nnactive_core.datasets.raw_format import (
    DATASET_JSON,
    FREE_FOLDER,
    SPLITS,
    SUPPORTED_FILE_ENDINGS,
    DatasetError,
    DatasetFileError,
    as_label_array,
    hidden_files,
    list_case_files,
    list_channel_files,
    read_image,
    read_image_information,
)

LEVELS = ("structure", "headers", "full")
GEOMETRY_TOLERANCE = 1e-4


def _add(problems: list[Problem], path: Path, message: str) -> None:
    problems.append(Problem(file=path, message=message))


@attrs.frozen(kw_only=True)
class Problem:
    file: Path
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


class DatasetValidationError(DatasetError):
    def __init__(self, root: Path, problems: list[Problem]):
        self.root = root
        self.problems = problems
        listed = "; ".join(str(p) for p in problems)
        super().__init__(f"dataset {root} has {len(problems)} problem(s): {listed}")


def check_dataset(
    root: Path, level: str = "full", progress: Callable[[int, int], None] | None = None
) -> None:
    problems = validate_dataset(root, level=level, progress=progress)
    if problems:
        raise DatasetValidationError(Path(root), problems)


def validate_dataset(
    root: Path, level: str = "full", progress: Callable[[int, int], None] | None = None
) -> list[Problem]:
    """All problems of the dataset at ``root``; ``progress(done, total)`` is called per case."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    root = Path(root)
    if not root.is_dir():
        return [Problem(file=root, message="not a folder")]
    problems: list[Problem] = []
    dataset_json = _read_json(root / DATASET_JSON, problems)
    if dataset_json is None:
        return problems
    _check_fields(root / DATASET_JSON, dataset_json, problems)
    file_ending = dataset_json.get("file_ending")
    if not isinstance(file_ending, str) or file_ending.lower() not in SUPPORTED_FILE_ENDINGS:
        return problems
    channels = _channel_count(dataset_json)
    cases = _check_layout(root, dataset_json, file_ending, channels, problems)
    if level == "structure":
        return problems
    declared = _declared_values(dataset_json.get("labels"))
    total = sum(len(split_cases) for split_cases in cases.values())
    done = 0
    for split, split_cases in cases.items():
        images, labels = (root / folder for folder in SPLITS[split])
        for case, channel_files in split_cases.items():
            files = [channel_files[c] for c in sorted(channel_files)]
            free = root / FREE_FOLDER / f"{case}{file_ending}" if split == "pool" else None
            _check_case(files, labels / f"{case}{file_ending}", free, level, declared, problems)
            done += 1
            if progress is not None:
                progress(done, total)
    return problems


def _read_json(path: Path, problems: list[Problem]) -> dict | None:
    duplicates: list[str] = []

    def pairs_hook(pairs):
        seen: dict = {}
        for key, value in pairs:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    try:
        payload = json.loads(path.read_text(), object_pairs_hook=pairs_hook)
    except FileNotFoundError:
        _add(problems, path, "missing")
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        _add(problems, path, f"malformed JSON: {error}")
        return None
    for key in duplicates:
        _add(problems, path, f"key {key!r} appears twice")
    if not isinstance(payload, dict):
        _add(problems, path, "not a JSON object")
        return None
    return payload


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_fields(path: Path, dataset_json: dict, problems: list[Problem]) -> None:
    def problem(message: str) -> None:
        _add(problems, path, message)

    for field in ("labels", "channel_names", "file_ending", "numTraining"):
        if field not in dataset_json and not (field == "channel_names" and "modality" in dataset_json):
            problem(f"required field {field!r} missing")
    if "dataset" in dataset_json:
        problem("field 'dataset' (explicit file lists) is not supported: use imagesTr/labelsTr folders")
    file_ending = dataset_json.get("file_ending")
    if "file_ending" in dataset_json and (
        not isinstance(file_ending, str) or file_ending.lower() not in SUPPORTED_FILE_ENDINGS
    ):
        problem(
            f"field 'file_ending' is {file_ending!r}; expected one of {', '.join(SUPPORTED_FILE_ENDINGS)}"
        )
    for field in ("numTraining", "numVal"):
        if field in dataset_json and not (_is_int(dataset_json[field]) and dataset_json[field] >= 0):
            problem(f"field {field!r} must be a non-negative integer, got {dataset_json[field]!r}")
    channel_names = dataset_json.get("channel_names", dataset_json.get("modality"))
    if channel_names is not None:
        if not isinstance(channel_names, dict) or not channel_names:
            problem('field \'channel_names\' must be a non-empty object like {"0": "MRI"}')
        elif sorted(channel_names) != sorted(str(i) for i in range(len(channel_names))):
            problem(
                f'field \'channel_names\' keys must be "0".."{len(channel_names) - 1}", '
                f"got {sorted(channel_names)}"
            )
    if "labels" in dataset_json:
        _check_labels(dataset_json["labels"], problem)


def _check_labels(labels, problem: Callable[[str], None]) -> None:
    if not isinstance(labels, dict) or not labels:
        problem("field 'labels' must be a non-empty object of name -> value")
        return
    plain: dict[int, str] = {}
    for name, value in labels.items():
        members = value if isinstance(value, list) and name != "ignore" else [value]
        if not members or not all(_is_int(v) and v >= 0 for v in members):
            problem(f"label {name!r} has value {value!r}; expected a non-negative integer")
            return
        if not isinstance(value, list):
            if value in plain:
                problem(f"labels {plain[value]!r} and {name!r} share the value {value}")
            plain[value] = name
    if labels.get("background") != 0:
        problem("labels must declare 'background': 0")
    used = _declared_values({n: v for n, v in labels.items() if n != "ignore"})
    if "ignore" in labels and used and labels["ignore"] <= max(used):
        problem(
            f"label 'ignore' ({labels['ignore']}) must be the highest label (highest other is {max(used)})"
        )
    # nnU-Net needs 0, 1, 2, ... with ignore (if any) directly above the rest
    values = sorted(used | ({labels["ignore"]} if "ignore" in labels else set()))
    if values != list(range(len(values))):
        problem(f"label values must be consecutive (0, 1, 2, ...), got {values}")


def _declared_values(labels) -> set[int]:
    if not isinstance(labels, dict):
        return set()
    declared: set[int] = set()
    for value in labels.values():
        declared.update(v for v in (value if isinstance(value, list) else [value]) if _is_int(v))
    return declared


def _channel_count(dataset_json: dict) -> int:
    channel_names = dataset_json.get("channel_names", dataset_json.get("modality"))
    return len(channel_names) if isinstance(channel_names, dict) and channel_names else 1


def _check_layout(
    root: Path, dataset_json: dict, file_ending: str, channels: int, problems: list[Problem]
) -> dict[str, dict[str, dict[int, Path]]]:
    """Folder listings: names, channels, pairs, duplicates, escapes. Returns the usable cases."""
    present = {split: (root / images).is_dir() for split, (images, _) in SPLITS.items()}
    for split, (images, labels) in SPLITS.items():
        for folder in (images, labels):
            if split == "pool" and not (root / folder).is_dir():
                _add(problems, root / folder, "missing folder")
        if split == "validation" and present[split] != (root / labels).is_dir():
            missing = labels if present[split] else images
            _add(problems, root / missing, "missing folder (its pair exists)")
    cases: dict[str, dict[str, dict[int, Path]]] = {}
    for split, (images, labels) in SPLITS.items():
        image_cases, misnamed = list_channel_files(root / images, file_ending)
        label_cases = list_case_files(root / labels, file_ending)
        for folder in (root / images, root / labels):
            _check_folder_files(root, folder, file_ending, problems)
        for path in misnamed:
            _add(problems, path, f"not named <case>_XXXX{file_ending} (channel suffix)")
        usable: dict[str, dict[int, Path]] = {}
        for case, channel_files in image_cases.items():
            ok = _check_case_name(case, channel_files[min(channel_files)], problems)
            for channel in range(channels):
                if channel not in channel_files:
                    ok = False
                    expected = root / images / f"{case}_{channel:04d}{file_ending}"
                    _add(problems, expected, "missing channel file")
            for channel, path in channel_files.items():
                if channel >= channels:
                    ok = False
                    _add(problems, path, f"channel {channel} is not in channel_names ({channels} channel(s))")
            if case not in label_cases:
                ok = False
                _add(problems, root / labels / f"{case}{file_ending}", "missing label file")
            if ok:
                usable[case] = channel_files
        for case, path in label_cases.items():
            if case not in image_cases:
                _add(problems, path, f"label file without images in {images}")
        cases[split] = usable
    _check_counts(root / DATASET_JSON, dataset_json, root, file_ending, problems)
    _check_duplicates(root, file_ending, problems)
    known = {c for images, _ in SPLITS.values() for c in list_channel_files(root / images, file_ending)[0]}
    _check_free_folder(root, file_ending, known, problems)
    return cases


def _check_counts(
    path: Path, dataset_json: dict, root: Path, file_ending: str, problems: list[Problem]
) -> None:
    for field, split in (("numTraining", "pool"), ("numVal", "validation")):
        declared = dataset_json.get(field)
        if not _is_int(declared):
            continue
        found = len(list_channel_files(root / SPLITS[split][0], file_ending)[0])
        if declared != found:
            _add(problems, path, f"{field} is {declared} but {SPLITS[split][0]} holds {found} case(s)")


def _check_duplicates(root: Path, file_ending: str, problems: list[Problem]) -> None:
    seen: dict[str, Path] = {}
    for images, _ in SPLITS.values():
        for case, channel_files in list_channel_files(root / images, file_ending)[0].items():
            path = channel_files[min(channel_files)]
            key = case.lower()
            if key in seen:
                _add(problems, path, f"case {case!r} is listed twice (also {seen[key]})")
            else:
                seen[key] = path


def _check_case_name(case: str, path: Path, problems: list[Problem]) -> bool:
    if case in (".", "..") or any(c in case for c in "/\\\0") or case != case.strip():
        _add(problems, path, f"case name {case!r} would escape the dataset folder")
        return False
    return True


def _check_folder_files(root: Path, folder: Path, file_ending: str, problems: list[Problem]) -> None:
    for path in hidden_files(folder):
        if path.name.endswith(file_ending):
            _add(
                problems,
                path,
                "hidden image file (left by an interrupted write?): "
                "nnU-Net would read it as a case; remove it",
            )
    if not folder.is_dir():
        return
    allowed = (root.resolve(), folder.resolve())
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_symlink():
            target = path.resolve()
            if not path.exists():
                _add(problems, path, f"broken symlink to {target}")
            elif not any(target.is_relative_to(base) for base in allowed):
                _add(problems, path, f"symlink points outside the dataset folder ({target})")
        if not path.name.endswith(file_ending) and any(path.name.endswith(e) for e in SUPPORTED_FILE_ENDINGS):
            _add(problems, path, f"file ending differs from dataset.json's {file_ending!r}")


def _check_free_folder(root: Path, file_ending: str, known: set[str], problems: list[Problem]) -> None:
    folder = root / FREE_FOLDER
    _check_folder_files(root, folder, file_ending, problems)
    for case, path in list_case_files(folder, file_ending).items():
        if case not in known:
            _add(problems, path, "cost-free labels for a case that is in neither imagesTr nor imagesVal")


def _geometry(path: Path, problems: list[Problem]) -> tuple | None:
    try:
        info = read_image_information(path)
    except DatasetFileError as error:
        _add(problems, path, error.reason)
        return None
    if info.GetDimension() != 3:
        _add(problems, path, f"{info.GetDimension()}-D image; nnactive needs 3-D images")
        return None
    if info.GetNumberOfComponents() != 1:
        _add(
            problems,
            path,
            f"{info.GetNumberOfComponents()} components per voxel; "
            "expected a scalar image (one channel per file)",
        )
    return (
        tuple(reversed(info.GetSize())),
        np.array(info.GetSpacing()),
        np.array(info.GetOrigin()),
        np.array(info.GetDirection()),
    )


def _compare(
    path: Path, geometry: tuple, reference: tuple, reference_path: Path, problems: list[Problem]
) -> None:
    names = ("shape (z, y, x)", "spacing", "origin", "direction")
    for name, value, expected in zip(names, geometry, reference, strict=True):
        same = (
            value == expected
            if name.startswith("shape")
            else np.allclose(value, expected, rtol=GEOMETRY_TOLERANCE, atol=GEOMETRY_TOLERANCE)
        )
        if not same:
            shown = tuple(value) if name.startswith("shape") else tuple(np.round(value, 6).tolist())
            wanted = tuple(expected) if name.startswith("shape") else tuple(np.round(expected, 6).tolist())
            _add(problems, path, f"{name} {shown} differs from {wanted} of {reference_path.name}")


def _check_case(
    images: list[Path],
    label: Path,
    free: Path | None,
    level: str,
    declared: set[int],
    problems: list[Problem],
) -> None:
    reference = _geometry(images[0], problems)
    others = [*images[1:], label, *([free] if free is not None and free.exists() else [])]
    for path in others:
        geometry = _geometry(path, problems)
        if geometry is not None and reference is not None:
            _compare(path, geometry, reference, images[0], problems)
    if level != "full":
        return
    import SimpleITK as sitk

    for path in images:
        try:
            array = sitk.GetArrayFromImage(read_image(path))
        except DatasetFileError as error:
            _add(problems, path, error.reason)
            continue
        if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
            _add(problems, path, "contains NaN or infinite values")
    for path, allowed in ((label, declared), (free, declared | {NOT_FREE})):
        if path is None or not path.exists():
            continue
        try:
            values = np.unique(as_label_array(sitk.GetArrayFromImage(read_image(path)), path))
        except DatasetFileError as error:
            _add(problems, path, error.reason)
            continue
        unexpected = sorted(int(v) for v in values if int(v) not in allowed)
        if unexpected:
            _add(
                problems,
                path,
                f"label value(s) {unexpected} not declared in dataset.json labels {sorted(allowed)}",
            )
