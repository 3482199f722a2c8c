"""The options of ``nnactive setup`` and ``nnactive run``: every experiment config field, the
``--config`` file (TOML or JSON), the trackers, and how an experiment name in the established format
becomes a config."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import click

from nnactive_core.cli import completion
from nnactive_core.cli.options import DATASET_HELP, TRIPLE, base_dataset, check_names, key_values
from nnactive_core.experiment.config import RUN_DEFAULTS, ExperimentConfig
from nnactive_core.experiment.layout import ExperimentLayout, Roots, find_experiment
from nnactive_core.io import JsonFileError, read_json

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def _default(field: str) -> str:
    """``  [default: X]`` from the experiment config's field default."""
    value = attrs.fields_dict(ExperimentConfig)[field].default
    if isinstance(value, tuple) and len(set(value)) == 1:
        value = value[0]
    return f"  [default: {value}]"


def _stop_rule(parameter: click.Parameter, value: str | None) -> str | None:
    from nnactive_core.experiment.stopping import StopSpecError, parse_stop_when

    if value is not None:
        try:
            parse_stop_when(value)
        except StopSpecError as error:
            raise click.BadParameter(str(error), param=parameter) from None
    return value


REQUIRED = "[required, unless --experiment or a --config file gives it]"
CONFIG_OPTIONS: list[tuple[tuple[str, ...], str, dict]] = [
    (
        ("-d", "--dataset"),
        "dataset",
        {"help": f"Base dataset: {DATASET_HELP}  {REQUIRED}", "shell_complete": completion.datasets},
    ),
    (
        ("--strategy",),
        "strategy",
        {
            "help": f"Query strategy (see `nnactive plugins`)  {REQUIRED}",
            "shell_complete": completion.registered("strategy"),
        },
    ),
    (
        ("--patch-size",),
        "patch_size",
        {
            "type": TRIPLE,
            "help": "Query patch size Z,Y,X or Z Y X (one number: every axis)  "
            "[default: the patch size of the base dataset's nnU-Net plans]",
        },
    ),
    (
        ("--query-size",),
        "query_size",
        {"type": click.IntRange(min=1), "help": "Patches per query  [default: 20]"},
    ),
    (
        ("--loops",),
        "query_steps",
        {
            "type": click.IntRange(min=1),
            "help": "Loops (= trainings), numbered from 0; loop 0 trains on the starting budget  "
            "[default: 5]",
        },
    ),
    (("--seed",), "seed", {"type": int, "help": "Experiment seed." + _default("seed")}),
    (
        ("--starting-budget",),
        "starting_budget",
        {
            "help": "Placement strategy of loop 0  [default: random-label2-all-classes with the "
            "nnactive-random-fg plugin, else the core's random]",
            "shell_complete": completion.registered("strategy", "placement"),
        },
    ),
    (
        ("--starting-budget-size",),
        "starting_budget_size",
        {"type": click.IntRange(min=1), "help": "Patches of loop 0  [default: the query size]"},
    ),
    (
        ("--patches-per-case",),
        "patches_per_case",
        {
            "type": click.IntRange(min=1),
            "help": "Query candidates per case and pool  [default: the query size]",
        },
    ),
    (
        ("--agg-stride",),
        "agg_stride",
        {
            "type": TRIPLE,
            "help": "Stride of the patch scores, Z,Y,X (one number: every axis)." + _default("agg_stride"),
        },
    ),
    (
        ("--patch-overlap",),
        "patch_overlap",
        {
            "type": click.FloatRange(0, 1),
            "help": "Overlap allowed between a queried patch and another, a fraction of its volume."
            + _default("patch_overlap"),
        },
    ),
    (
        ("--clip-patch-to-case/--no-clip-patch-to-case",),
        "clip_patch_to_case",
        {
            "default": None,
            "help": "Allow patches larger than a case: they cover the case along that axis."
            + _default("clip_patch_to_case"),
        },
    ),
    (
        ("--free-overlap",),
        "free_overlap",
        {
            "type": click.FloatRange(0, 1),
            "help": "Share of a queried patch that may be cost-free (addTr)." + _default("free_overlap"),
        },
    ),
    (
        ("--folds",),
        "folds",
        {"type": click.IntRange(min=2), "help": "Cross-validation folds." + _default("folds")},
    ),
    (
        ("--train-folds",),
        "train_folds",
        {"type": click.IntRange(min=1), "help": "Folds trained and ensembled  [default: all folds]"},
    ),
    (
        ("--profile",),
        "training_profile",
        {
            "help": "Training profile: default (the established nnU-Net training), small (a CPU profile "
            "that learns real anatomy: docs/real-data-example.md) or tiny (CPU tests, the demo); small and "
            "tiny train without mirroring, so no test-time mirroring either." + _default("training_profile"),
            "shell_complete": completion.profiles,
        },
    ),
    (
        ("--dataset-adapter",),
        "dataset_adapter",
        {
            "help": "Dataset adapter (see `nnactive plugins`)." + _default("dataset_adapter"),
            "shell_complete": completion.registered("dataset adapter"),
        },
    ),
    (
        ("--query-tile-step",),
        "query_tile_step",
        {
            "type": click.FloatRange(0, 1, min_open=True),
            "help": "Sliding-window step of the pool prediction, a fraction of the patch."
            + _default("query_tile_step"),
        },
    ),
    (
        ("--val-tile-step",),
        "val_tile_step",
        {
            "type": click.FloatRange(0, 1, min_open=True),
            "help": "Sliding-window step of the validation prediction." + _default("val_tile_step"),
        },
    ),
    (
        ("--query-mirroring/--no-query-mirroring",),
        "query_mirroring",
        {
            "default": None,
            "help": "Test-time mirroring of the pool prediction  [default: the profile's: off]",
        },
    ),
    (
        ("--val-mirroring/--no-val-mirroring",),
        "val_mirroring",
        {
            "default": None,
            "help": "Test-time mirroring of the validation prediction  [default: the profile's: on with "
            "default, off with tiny]",
        },
    ),
    (
        ("--probability-dtype",),
        "probability_dtype",
        {
            "type": click.Choice(["float16", "float32"]),
            "help": "Precision of the stored pool probabilities." + _default("probability_dtype"),
        },
    ),
    (
        ("--warm-start/--no-warm-start",),
        "warm_start",
        {
            "default": None,
            "help": "Start each fold of a loop from the same fold of the loop before and train the profile's "
            "warm_epochs (docs/warm-start.md); adds __ws-N to the name." + _default("warm_start"),
        },
    ),
    (
        ("--ensemble",),
        "ensemble",
        {
            "type": click.Choice(["folds", "snapshots"]),
            "help": "Models that validate and score the pool: one per fold, or the profile's snapshots "
            "of one training (docs/warm-start.md); snapshots adds __ens-snapshots to the name."
            + _default("ensemble"),
        },
    ),
    (("--device",), "device", {"help": "Torch device  [default: cuda if available, else cpu]"}),
    (
        ("--budget-metric",),
        "budget_metric",
        {
            "help": "Cost column each query's budget is spent in (patches, foreground_voxels, "
            "annotation_seconds, ...)." + _default("budget_metric"),
        },
    ),
    (
        ("--query-budget",),
        "query_budget",
        {
            "type": click.FloatRange(0, min_open=True),
            "help": "Budget of each query in the budget metric  [default: the query size, in patches]",
        },
    ),
    (
        ("--starting-query-budget",),
        "starting_query_budget",
        {
            "type": click.FloatRange(0, min_open=True),
            "help": "Budget of loop 0 in the budget metric  [default: the starting budget size, in patches]",
        },
    ),
    (
        ("--annotator",),
        "annotator",
        {
            "type": click.Choice(["oracle", "human"]),
            "help": "Who labels queried patches: the ground-truth oracle, or people (`nnactive annotate`)."
            + _default("annotator"),
        },
    ),
    (
        ("--stop-when",),
        "stop_when",
        {
            "metavar": "stable[:THRESHOLD[,LOOPS]]",
            "callback": lambda context, parameter, value: _stop_rule(parameter, value),
            "help": "End the experiment early once the stop-set agreement between consecutive loops was "
            "at least THRESHOLD for LOOPS loops in a row (docs/stopping.md)  [default: run every loop; "
            "stable alone is stable:0.95,2]",
        },
    ),
    (
        ("--stop-set-size",),
        "stop_set_size",
        {
            "type": click.IntRange(min=1),
            "help": "Pool cases the stopping signal is measured on." + _default("stop_set_size"),
        },
    ),
]
NAMED_BY_EXPERIMENT = (
    "dataset",
    "strategy",
    "patch_size",
    "query_size",
    "seed",
    "starting_budget",
    "budget_metric",
    "query_budget",
    "starting_query_budget",
    "warm_start",
    "ensemble",
)
"""Config fields an experiment name states (with the starting budget size)."""


def config_options(command: Callable) -> Callable:
    for flags, name, extra in reversed(CONFIG_OPTIONS):
        command = click.option(*flags, name, **extra)(command)
    command = click.option(
        "--train-option",
        "train_options",
        multiple=True,
        metavar="KEY=VALUE",
        callback=key_values(),
        help="Training profile field override, e.g. epochs=5 (repeatable).",
    )(command)
    command = click.option(
        "--dataset-option",
        "dataset_options",
        multiple=True,
        metavar="KEY=VALUE",
        callback=key_values(),
        help="Dataset adapter option, e.g. n_cases=8 (repeatable).",
    )(command)
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="TOML or JSON file of experiment config fields; options override it  [default: none]",
    )(command)


def read_config_file(path: Path) -> dict[str, Any]:
    """Experiment config fields from a ``.toml`` file, or from JSON (any other ending)."""
    path = Path(path)
    if path.suffix.lower() != ".toml":
        try:
            return read_json(path, expect=dict)
        except JsonFileError as error:
            raise click.BadParameter(str(error), param_hint="--config") from None
    try:
        return tomllib.loads(path.read_text())
    except OSError as error:
        raise click.BadParameter(f"{path}: {error.strerror or error}", param_hint="--config") from None
    except tomllib.TOMLDecodeError as error:
        raise click.BadParameter(f"{path}: not valid TOML: {error}", param_hint="--config") from None


def given_options(options: dict[str, Any]) -> list[str]:
    """The config options given on the command line, by flag."""
    flags = [flags[-1] for flags, name, _ in CONFIG_OPTIONS if options.get(name) is not None]
    extra = {
        "train_options": "--train-option",
        "dataset_options": "--dataset-option",
        "config_file": "--config",
    }
    return flags + [flag for name, flag in extra.items() if options.get(name)]


def config_fields(options: dict[str, Any]) -> dict[str, Any]:
    """Config file < command-line options."""
    options = dict(options)
    fields: dict[str, Any] = {}
    config_file = options.pop("config_file", None)
    if config_file is not None:
        fields.update(read_config_file(Path(config_file)))
    train, data = options.pop("train_options", None) or {}, options.pop("dataset_options", None) or {}
    fields.update({k: v for k, v in options.items() if v is not None})
    if train:
        fields["training_overrides"] = {**fields.get("training_overrides", {}), **train}
    if data:
        fields["dataset_options"] = {**fields.get("dataset_options", {}), **data}
    return fields


def build_config(options: dict[str, Any], roots: Roots) -> ExperimentConfig:
    """The config of the options (and ``--config`` file): the strategy names are checked first, then
    the dataset is resolved; query size, loops and patch size get defaults."""
    fields = config_fields(options)
    for name in ("dataset", "strategy"):
        if name not in fields:
            raise click.UsageError(f"missing --{name} (or a --config file with {name!r})")
    check_names("strategy", [str(fields["strategy"])])
    if "starting_budget" in fields:
        check_names("strategy", [str(fields["starting_budget"])])
    fields["dataset"] = base_dataset(fields["dataset"], roots.base_nnunet.raw)
    for name, value in RUN_DEFAULTS.items():
        fields.setdefault(name, value)
    if "patch_size" not in fields:
        from nnactive_core.nnunet.plans import planned_patch_size

        planned = planned_patch_size(roots.base_nnunet, fields["dataset"])
        if planned is None:
            raise click.UsageError(
                f"missing --patch-size: {fields['dataset']} has no nnU-Net plans to take it from "
                f"(`nnactive data plan {fields['dataset']}` makes them)"
            )
        fields["patch_size"] = planned
    return ExperimentConfig.from_json(fields, source="experiment options")


def config_from_name(name: str, options: dict[str, Any], roots: Roots) -> ExperimentConfig:
    """The config of a new experiment named in the established format; options may add what a name
    does not say (loops, profile, folds, ...)."""
    from nnactive_core.experiment.naming import parse_name, strip_folder_prefix

    try:
        parsed = parse_name(name)
    except ValueError as error:
        raise click.ClickException(
            f"experiment {name!r} not found under {roots.results}, and {error}"
        ) from None
    clashing = [
        flags[-1]
        for flags, field, _ in CONFIG_OPTIONS
        if field in NAMED_BY_EXPERIMENT and options.get(field) is not None
    ]
    if options.get("starting_budget_size") is not None:
        clashing.append("--starting-budget-size")
    if clashing:
        raise click.UsageError(f"the experiment name gives {', '.join(clashing)}: leave them out")
    from_name = {
        "dataset": parsed.dataset,
        "strategy": parsed.strategy,
        "starting_budget": parsed.starting_budget,
        "patch_size": parsed.patch_size,
        "query_size": parsed.query_size,
        "seed": parsed.seed,
        "warm_start": parsed.warm_epochs is not None,
        "ensemble": parsed.ensemble or "folds",
    }
    if parsed.starting_budget_size != parsed.query_size:
        from_name["starting_budget_size"] = parsed.starting_budget_size
    from_name.update(parsed.budget_fields())
    config = build_config({**options, **from_name}, roots)
    if config.name() != strip_folder_prefix(name):
        raise click.ClickException(
            f"experiment {name!r}: the config it names is called {config.name()} (check the --config file)"
        )
    return config


def named_experiment(
    experiment: str, options: dict[str, Any], roots: Roots
) -> ExperimentLayout | ExperimentConfig:
    """The experiment called ``experiment`` if it exists (then no config options are allowed), else
    the config of a new one set up from its name."""
    layout = find_experiment(roots, experiment)
    if layout is None:
        return config_from_name(experiment, options, roots)
    given = given_options(options)
    if given:
        raise click.UsageError(
            f"--experiment {experiment} exists; it takes no config options (got {', '.join(given)})"
        )
    return layout


def experiment_option(help_text: str) -> Callable:
    return click.option(
        "--experiment", "-e", "experiment", help=help_text, shell_complete=completion.experiments
    )


def tracker_options(command: Callable) -> Callable:
    command = click.option(
        "--no-tracker",
        "no_tracker",
        is_flag=True,
        help="Run without the trackers recorded for the experiment.",
    )(command)
    return click.option(
        "--tracker",
        "trackers",
        multiple=True,
        metavar="NAME",
        shell_complete=completion.registered("tracker"),
        help="Experiment tracker (repeatable; see `nnactive plugins`), e.g. wandb; recorded, so a resume "
        "keeps it  [default: the trackers recorded for the experiment, else none]",
    )(command)


def chosen_trackers(trackers: tuple[str, ...], no_tracker: bool) -> list[str] | None:
    if trackers and no_tracker:
        raise click.UsageError("--tracker and --no-tracker exclude each other")
    check_names("tracker", trackers)
    return [] if no_tracker else (list(trackers) or None)
