"""``nnactive query``: run a score strategy and the patch query engine on stored ensemble probabilities,
without a model. Each case is one file ``<case>.npy`` or ``<case>.npz`` (array ``probabilities``, or
its only array) of shape members x classes x Z x Y x X, loaded when its turn comes."""

from __future__ import annotations

import zipfile
from pathlib import Path

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
    """The stored members x classes x Z x Y x X array of one case."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            return np.load(path)
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


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


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
            file=case + file_ending, shape=shape[2:], load_probabilities=lambda p=path: read_probabilities(p)
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
    help="Loop file of already annotated patches (repeatable).",
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
    from nnactive_core.patches.patch import Patch, load_loop
    from nnactive_core.query.engine import StrategyError, candidate_records, run_score_query
    from nnactive_core.strategies.api import QueryContext, ScoreStrategy

    strategy, owner = resolve_strategy(strategy_name)
    if not isinstance(strategy, ScoreStrategy):
        raise click.ClickException(
            f"strategy {strategy_name!r} places patches from the ground-truth oracle; `nnactive query` runs "
            "score strategies on stored probabilities only (placement strategies run inside `nnactive run`)"
        )
    try:
        files = probability_files(probs_dir)
        classes = probability_shape(next(iter(files.values())))[1]
        values, background = label_values(labels, dataset_json, classes)
        prior: list[Patch] = [p for path in annotated for p in load_loop(path)]
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
            device=device or default_device(),
        )
        result = run_score_query(strategy, _cases(files, file_ending, len(values)), ctx, owner=owner)
    except (ValueError, StrategyError) as error:
        raise click.ClickException(str(error)) from None
    atomic_write_json(
        out,
        {
            "patches": [patch.to_json() for patch in result.patches],
            "strategy": strategy_name,
            "seed": seed,
            "loop": loop,
            "candidates": candidate_records(result.candidates, result.chosen),
        },
    )
    click.echo(f"{len(result.patches)} patches from {len(result.candidates.cases)} cases -> {out}")
