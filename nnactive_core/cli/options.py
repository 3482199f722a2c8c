"""Options shared by the commands: one patch-size syntax, one ``KEY=VALUE`` parser, one dataset
resolver, early checks of plugin names. Every command builds its options from these, so
``--patch-size 20,20,20`` and ``--patch-size 20 20 20`` mean the same in ``run``, ``query`` and
``score``, and ``-d 4``, ``4``, ``Dataset004_Hippocampus`` and ``Hippocampus`` name the same dataset in
``run``, ``setup``, ``grid`` and every ``data`` command."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from nnactive_core.cli.completion import datasets, raw_roots
from nnactive_core.values import parse_key_values, parse_triple

TRIPLE_OPTIONS = ("--patch-size", "--agg-stride", "--stride")
_INTEGER = re.compile(r"^\d+$")
DATASET_HELP = (
    "an id (4), a folder name (Dataset004_Hippocampus) or a name (Hippocampus) in "
    "$nnActive_raw/nnUNet_raw (or $nnUNet_raw)"
)


def join_triples(args: Sequence[str]) -> list[str]:
    """``--patch-size 20 20 20`` -> ``--patch-size 20,20,20``: up to three integers after an option
    that takes Z,Y,X become one value, so both spellings parse alike."""
    joined: list[str] = []
    index = 0
    while index < len(args):
        joined.append(args[index])
        if args[index] in TRIPLE_OPTIONS:
            values = []
            while index + 1 < len(args) and len(values) < 3 and _INTEGER.match(args[index + 1]):
                values.append(args[index + 1])
                index += 1
            if values:
                joined.append(",".join(values))
        index += 1
    return joined


class Triple(click.ParamType):
    """Z,Y,X integers (commas or spaces), or one for every axis."""

    name = "Z,Y,X"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, tuple):
            return value
        try:
            values = parse_triple(value, "value")
        except ValueError:
            self.fail(f"expected Z,Y,X (three integers) or one integer, got {value!r}", param, ctx)
        if min(values) < 1:
            self.fail(f"expected positive integers, got {value!r}", param, ctx)
        return values


TRIPLE = Triple()


def key_values(*, typed: bool = True) -> Callable[[click.Context, click.Parameter, tuple[str, ...]], dict]:
    """A callback turning a repeatable ``KEY=VALUE`` option into a dict (see :mod:`nnactive_core.values`)."""

    def callback(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict:
        try:
            return parse_key_values(value, "value", typed=typed)
        except ValueError as error:
            raise click.BadParameter(str(error), ctx=ctx, param=param) from None

    return callback


def check_names(kind: str, names: Sequence[str]) -> None:
    """Every name is registered for ``kind``: a typo stops the command at once, with suggestions."""
    from nnactive_core.plugins import PluginError, registry

    for name in names:
        try:
            registry().get(kind, name)
        except PluginError as error:
            raise click.ClickException(str(error)) from None


def base_dataset(text: str | int, raw: Path) -> str:
    """The base dataset's folder name from an id, a folder name or a name (looked up in ``raw``)."""
    from nnactive_core.datasets.names import DatasetNameError, resolve_dataset_name

    try:
        return resolve_dataset_name(text, [raw])
    except DatasetNameError as error:
        raise click.ClickException(str(error)) from None


def dataset_folder(text: str) -> Path:
    """A dataset's folder from a path, an id or a name (looked up in the raw roots)."""
    from nnactive_core.datasets.names import DatasetNameError, resolve_dataset_folder

    try:
        return resolve_dataset_folder(text, raw_roots())
    except DatasetNameError as error:
        raise click.ClickException(str(error)) from None


def dataset_argument(command: Callable) -> Callable:
    """``DATASET`` or ``-d/--dataset DATASET`` (a folder, an id or a name); the command receives the
    folder as ``dataset_dir``. Put it right above the function, below the other decorators."""

    @functools.wraps(command)
    def wrapper(*args, dataset: str | None = None, dataset_option: str | None = None, **kwargs):
        given = [value for value in (dataset, dataset_option) if value is not None]
        if len(given) != 1:
            raise click.UsageError(
                f"name the dataset once, as DATASET or -d/--dataset: its folder, or {DATASET_HELP}"
            )
        return command(*args, dataset_dir=dataset_folder(given[0]), **kwargs)

    wrapper = click.option(
        "-d",
        "--dataset",
        "dataset_option",
        metavar="DATASET",
        shell_complete=datasets,
        help=f"The dataset: its folder, or {DATASET_HELP}  [default: the DATASET argument]",
    )(wrapper)
    return click.argument("dataset", required=False, shell_complete=datasets)(wrapper)
