"""``nnactive query``: run a score strategy and the patch query engine on stored ensemble probabilities,
without a model. Each case is one file ``<case>.npy`` or ``<case>.npz`` (array ``probabilities``, or
its only array) of shape members x classes x Z x Y x X, loaded when its turn comes."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import attrs
import click
import numpy as np

from nnactive_core.cli.completion import registered
from nnactive_core.cli.options import TRIPLE
from nnactive_core.io import atomic_write_json
from nnactive_core.values import parse_ints

PROBABILITY_SUFFIXES = (".npy", ".npz")


def _npz_member(path: Path, names: list[str]) -> str:
    if "probabilities" in names:
        return "probabilities"
    if len(names) == 1:
        return names[0]
    raise ValueError(f"{path}: expected an array named 'probabilities' or a single array, found {names}")


def probability_shape(path: Path) -> tuple[int, ...]:
    """Shape of the stored array, read from its header without loading the data."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            return tuple(np.load(path, mmap_mode="r").shape)
        with zipfile.ZipFile(path) as archive:
            names = [name[: -len(".npy")] for name in archive.namelist() if name.endswith(".npy")]
            with archive.open(_npz_member(path, names) + ".npy") as handle:
                version = np.lib.format.read_magic(handle)
                readers = {
                    (1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0,
                }
                if version in readers:
                    return tuple(readers[version](handle)[0])
        return tuple(read_probabilities(path).shape)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: cannot read probabilities: {error}") from error


def read_probabilities(path: Path) -> np.ndarray:
    """The stored members x classes x Z x Y x X array of one case. A ``.npy`` file is memory-mapped
    (copy-on-write, so the file never changes): the engine reads it slab by slab from the page cache
    instead of copying it into RAM first."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            return np.load(path, mmap_mode="c")
        with np.load(path) as archive:
            return archive[_npz_member(path, list(archive.files))]
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: cannot read probabilities: {error}") from error


def check_probability_shape(path: Path, shape: tuple[int, ...], classes: int) -> tuple[int, ...]:
    """members x ``classes`` x Z x Y x X, one class per label value."""
    if len(shape) != 5 or shape[1] != classes:
        raise ValueError(
            f"{path}: probabilities of shape {shape}; expected members x {classes} classes x Z x Y x X"
        )
    return shape


def probability_files(folder: Path) -> dict[str, Path]:
    """Case id -> probability file of every ``.npy`` / ``.npz`` in ``folder``, sorted by case."""
    found: dict[str, Path] = {}
    for path in sorted(Path(folder).iterdir()):
        if path.suffix not in PROBABILITY_SUFFIXES or not path.is_file():
            continue
        if path.stem in found:
            raise ValueError(f"{folder}: case {path.stem!r} has both {found[path.stem].name} and {path.name}")
        found[path.stem] = path
    if not found:
        raise ValueError(f"{folder}: no probability files (<case>.npy or <case>.npz)")
    return found


def label_values(labels: str | None, dataset_json: Path | None, classes: int) -> tuple[tuple[int, ...], int]:
    """(label values in channel order, background) from ``--labels``, a dataset.json or, without
    either, the channels 0..classes-1 with background 0."""
    if labels is not None:
        try:
            return parse_ints(labels, "--labels"), 0
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--labels") from None
    if dataset_json is None:
        return tuple(range(classes)), 0
    from nnactive_core.datasets.api import label_values_without_ignore
    from nnactive_core.io import read_json

    declared = read_json(Path(dataset_json), expect=dict)
    try:
        values = label_values_without_ignore(declared["labels"])
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise ValueError(f"{dataset_json}: cannot read the field 'labels': {error}") from error
    return tuple(sorted(values.values())), int(values.get("background", 0))


def checked_device(device: str | None) -> str:
    """``--device``, checked to exist on this machine (default: cuda if a GPU is available, else cpu).
    The CPU needs no check, so a CPU-only query never imports torch."""
    from nnactive_core.nnunet.environment import resolve_device
    from nnactive_core.query.engine import default_device

    if device is None:
        return default_device()
    if device == "cpu":
        return device
    try:
        return str(resolve_device(device))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--device") from None


def writable_output(out: Path) -> Path:
    """``--out``, refused before any work when it cannot be written: a folder, or a place where the
    nearest existing folder is not writable."""
    out = Path(out)
    if out.is_dir():
        raise click.BadParameter(f"{out} is a folder; give a file name", param_hint="--out")
    existing = next(folder for folder in (out.parent, *out.parent.parents) if folder.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise click.BadParameter(f"{out}: {existing} is not a writable folder", param_hint="--out")
    return out


def write_output(out: Path, write) -> None:
    """Run ``write()``; a failure to write (permissions, a full disk) is one line naming the file."""
    try:
        write()
    except OSError as error:
        raise click.ClickException(f"--out {out}: cannot write: {error.strerror or error}") from None


def pool_patches(
    annotated: tuple[Path, ...], files: dict[str, Path], file_ending: str, pool_subset: bool
) -> list:
    """The patches of the ``--annotated`` loop files on the pool's cases. An entry may name its case
    with or without the file ending; one that names no case of the pool is refused (naming it), as it
    would otherwise be ignored and its region queried again, unless ``pool_subset`` says the pool is
    only part of the cases."""
    from nnactive_core.patches.patch import load_loop

    patches = []
    for path in annotated:
        for index, patch in enumerate(load_loop(path)):
            file = patch.file
            if file not in files and file.removesuffix(file_ending) not in files:
                if pool_subset:
                    continue
                raise ValueError(
                    f"{path} patch #{index}: {file!r} names no case of --probs ({len(files)} cases, e.g. "
                    f"{next(iter(files))}); fix the entry, or pass --pool-subset when the "
                    "probabilities cover only part of the annotated cases"
                )
            case = file.removesuffix(file_ending) if file.removesuffix(file_ending) in files else file
            patches.append(attrs.evolve(patch, file=case + file_ending))
    return patches


def resolve_strategy(name: str):
    """(strategy, owning distribution name) from the plugin registry."""
    from nnactive_core import plugins

    try:
        registry = plugins.registry()
        return registry.get("strategy", name), registry.owner("strategy", name).name
    except plugins.PluginError as error:
        raise click.ClickException(str(error)) from None


def _cases(files: dict[str, Path], file_ending: str, classes: int):
    from nnactive_core.query.engine import CaseInput

    for case, path in files.items():
        shape = check_probability_shape(path, probability_shape(path), classes)
        yield CaseInput(
            file=case + file_ending,
            shape=shape[2:],
            load_probabilities=lambda p=path: read_probabilities(p),
            concurrent_loads=True,
        )


@click.command()
@click.option(
    "--strategy",
    "strategy_name",
    required=True,
    shell_complete=registered("strategy", "score"),
    help="Name of a score strategy (see `nnactive plugins`).",
)
@click.option(
    "--probs",
    "probs_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of <case>.npy / <case>.npz probabilities, members x classes x Z x Y x X.",
)
@click.option(
    "--patch-size", required=True, type=TRIPLE, help="Patch size Z,Y,X or Z Y X (one number: every axis)."
)
@click.option("--query-size", required=True, type=click.IntRange(min=1), help="Patches in the query.")
@click.option("--stride", default="1", type=TRIPLE, help="Aggregation stride Z,Y,X (one number: every axis).")
@click.option(
    "--patches-per-case",
    type=click.IntRange(min=1),
    help="Candidates per case and pool  [default: the query size]",
)
@click.option(
    "--annotated",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Loop file of annotated patches (repeatable); entries name cases with or without the ending.",
)
@click.option(
    "--pool-subset",
    is_flag=True,
    help="The probabilities cover only part of the cases: ignore --annotated entries on other cases.",
)
@click.option(
    "--patch-overlap",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Allowed overlap of a patch with another, as a fraction of its volume.",
)
@click.option("--seed", default=0, type=int, help="Seed of the query's random draws.")
@click.option(
    "--loop",
    default=1,
    type=click.IntRange(min=0),
    help="Index of the loop file this query creates (for schedules).",
)
@click.option(
    "--query-steps",
    default=1,
    type=click.IntRange(min=1),
    help="Loops of the experiment (for schedules).",
)
@click.option("--labels", help="Label values in channel order, e.g. '0,1,2'  [default: 0 .. classes-1]")
@click.option(
    "--dataset-json",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read label values (and background) from this dataset.json  [default: --labels]",
)
@click.option("--file-ending", default=".nii.gz", help="Appended to case ids in patch files.")
@click.option("--device", help="Torch device of the strategy  [default: cuda if available, else cpu]")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output JSON: loop-file format plus the candidates.",
)
def query(
    strategy_name,
    probs_dir,
    patch_size,
    query_size,
    stride,
    patches_per_case,
    annotated,
    pool_subset,
    patch_overlap,
    seed,
    loop,
    query_steps,
    labels,
    dataset_json,
    file_ending,
    device,
    out,
) -> None:
    """Run a score strategy on stored ensemble probabilities and write the queried patches."""
    from nnactive_core.query.engine import StrategyError, candidate_records, run_score_query
    from nnactive_core.strategies.api import QueryContext, ScoreStrategy

    strategy, owner = resolve_strategy(strategy_name)
    if not isinstance(strategy, ScoreStrategy):
        raise click.ClickException(
            f"strategy {strategy_name!r} places patches from the ground-truth oracle; `nnactive query` runs "
            "score strategies on stored probabilities only (placement strategies run inside `nnactive run`)"
        )
    out = writable_output(out)
    device = checked_device(device)
    try:
        files = probability_files(probs_dir)
        classes = probability_shape(next(iter(files.values())))[1]
        values, background = label_values(labels, dataset_json, classes)
        prior = pool_patches(annotated, files, file_ending, pool_subset)
        ctx = QueryContext(
            patch_size=patch_size,
            query_size=query_size,
            patches_per_case=patches_per_case or query_size,
            seed=seed,
            loop=loop,
            query_steps=query_steps,
            label_values=values,
            background=background,
            stride=stride,
            patch_overlap=patch_overlap,
            annotated=prior,
            device=device,
        )
        result = run_score_query(strategy, _cases(files, file_ending, len(values)), ctx, owner=owner)
    except (ValueError, StrategyError) as error:
        raise click.ClickException(str(error)) from None
    record = {
        "patches": [patch.to_json() for patch in result.patches],
        "strategy": strategy_name,
        "seed": seed,
        "loop": loop,
        "candidates": candidate_records(result.candidates, result.chosen),
    }
    write_output(out, lambda: atomic_write_json(out, record))
    click.echo(f"{len(result.patches)} patches from {len(result.candidates.cases)} cases -> {out}")
