"""``nnactive setup``, ``nnactive run``, ``nnactive status``, ``nnactive remove`` and ``nnactive demo``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from nnactive_core.experiment.config import RUN_DEFAULTS, ConfigError, ExperimentConfig
from nnactive_core.experiment.layout import (
    DATA_ENV,
    RAW_ENV,
    ExperimentLayout,
    LayoutError,
    Roots,
    find_experiment,
)
from nnactive_core.io import JsonFileError, read_json

DEMO_FOLDER = "nnactive_demo"


@contextmanager
def user_errors() -> Iterator[None]:
    """Known problems become one-line CLI errors (exit 1, no traceback)."""
    from nnactive_core.datasets.raw_format import DatasetError
    from nnactive_core.experiment.lock import LockedError
    from nnactive_core.experiment.loop_checks import LoopFileError
    from nnactive_core.experiment.querying import QueryStepError
    from nnactive_core.experiment.runner import RunError
    from nnactive_core.experiment.setup import SetupError
    from nnactive_core.experiment.state import StateError
    from nnactive_core.experiment.versions import VersionChangeError
    from nnactive_core.io import UnsafePathError
    from nnactive_core.plugins import PluginError

    known = (
        LoopFileError,
        UnsafePathError,
        ConfigError,
        LayoutError,
        SetupError,
        PluginError,
        LockedError,
        VersionChangeError,
        StateError,
        QueryStepError,
        DatasetError,
    )
    try:
        yield
    except known as error:
        raise click.ClickException(
            str(error).splitlines()[0] if str(error) else type(error).__name__
        ) from None
    except RunError as error:
        raise click.ClickException(
            f"{error}; details in the experiment's log.txt; fix the cause and resume with `nnactive run`"
        ) from None


def _key_values(values: tuple[str, ...], option: str) -> dict[str, Any]:
    parsed = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=option)
        try:
            parsed[key] = json.loads(value)
        except ValueError:
            parsed[key] = value
    return parsed


CONFIG_OPTIONS: list[tuple[str, str, dict]] = [
    ("--dataset", "dataset", {"help": "Base dataset folder name, e.g. Dataset004_Hippocampus."}),
    ("--strategy", "strategy", {"help": "Query strategy (see `nnactive plugins`)."}),
    ("--patch-size", "patch_size", {"help": "Query patch Z,Y,X (or one number); default: the base plans."}),
    ("--query-size", "query_size", {"type": click.IntRange(min=1), "help": "Patches per query [20]."}),
    ("--loops", "query_steps", {"type": click.IntRange(min=1), "help": "Loops (= trainings) [5]."}),
    ("--seed", "seed", {"type": int, "help": "Experiment seed [12345]."}),
    ("--starting-budget", "starting_budget", {"help": "Placement strategy of loop 0."}),
    ("--starting-budget-size", "starting_budget_size", {"type": click.IntRange(min=1)}),
    ("--patches-per-case", "patches_per_case", {"type": click.IntRange(min=1)}),
    ("--agg-stride", "agg_stride", {"help": "Patch-score stride Z,Y,X (or one number)."}),
    ("--patch-overlap", "patch_overlap", {"type": click.FloatRange(0, 1)}),
    (
        "--clip-patch-to-case/--no-clip-patch-to-case",
        "clip_patch_to_case",
        {"default": None, "help": "Allow patches larger than a case: they cover the case along that axis."},
    ),
    ("--free-overlap", "free_overlap", {"type": click.FloatRange(0, 1)}),
    ("--folds", "folds", {"type": click.IntRange(min=2)}),
    ("--train-folds", "train_folds", {"type": click.IntRange(min=1), "help": "Folds trained and ensembled."}),
    ("--profile", "training_profile", {"help": "Training profile: default, small or tiny."}),
    ("--dataset-adapter", "dataset_adapter", {"help": "Dataset adapter [nnunet-raw]."}),
    ("--query-tile-step", "query_tile_step", {"type": click.FloatRange(0, 1, min_open=True)}),
    ("--val-tile-step", "val_tile_step", {"type": click.FloatRange(0, 1, min_open=True)}),
    ("--query-mirroring/--no-query-mirroring", "query_mirroring", {"default": None}),
    ("--val-mirroring/--no-val-mirroring", "val_mirroring", {"default": None}),
    ("--probability-dtype", "probability_dtype", {"type": click.Choice(["float16", "float32"])}),
    ("--device", "device", {"help": "Torch device (default: cuda if available, else cpu)."}),
    (
        "--annotator",
        "annotator",
        {
            "type": click.Choice(["oracle", "human"]),
            "help": "Who labels queried patches: the ground-truth oracle, or people (`nnactive annotate`).",
        },
    ),
]


def config_options(command: Callable) -> Callable:
    for flag, name, extra in reversed(CONFIG_OPTIONS):
        command = click.option(flag, name, **extra)(command)
    command = click.option(
        "--train-option",
        "train_options",
        multiple=True,
        metavar="KEY=VALUE",
        help="Training profile field override, e.g. epochs=5 (repeatable).",
    )(command)
    command = click.option(
        "--dataset-option",
        "dataset_options",
        multiple=True,
        metavar="KEY=VALUE",
        help="Dataset adapter option (repeatable).",
    )(command)
    return click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="JSON file with experiment config fields; options override it.",
    )(command)


def build_config(options: dict[str, Any], roots: Roots) -> ExperimentConfig:
    """Config file < command-line options; query size, loops and patch size get defaults."""
    fields: dict[str, Any] = {}
    config_file = options.pop("config_file", None)
    if config_file is not None:
        try:
            fields.update(read_json(Path(config_file), expect=dict))
        except JsonFileError as error:
            raise click.BadParameter(str(error), param_hint="--config") from None
    train, data = options.pop("train_options", ()), options.pop("dataset_options", ())
    fields.update({k: v for k, v in options.items() if v is not None})
    if train:
        fields["training_overrides"] = {
            **fields.get("training_overrides", {}),
            **_key_values(train, "--train-option"),
        }
    if data:
        fields["dataset_options"] = {
            **fields.get("dataset_options", {}),
            **_key_values(data, "--dataset-option"),
        }
    for name in ("dataset", "strategy"):
        if name not in fields:
            raise click.UsageError(f"missing --{name} (or a --config file with {name!r})")
    for name, value in RUN_DEFAULTS.items():
        fields.setdefault(name, value)
    if "patch_size" not in fields:
        from nnactive_core.nnunet.plans import planned_patch_size

        planned = planned_patch_size(roots.base_nnunet, fields["dataset"])
        if planned is None:
            raise click.UsageError(
                f"missing --patch-size: {fields['dataset']} has no nnU-Net plans to take it from"
            )
        fields["patch_size"] = planned
    return ExperimentConfig.from_json(fields, source="experiment options")


def roots_from_env() -> Roots:
    return Roots.from_env()


def _echo(line: str) -> None:
    click.echo(line, err=True)


def run_one(layout: ExperimentLayout, allow_version_change: bool) -> None:
    from nnactive_core.experiment.runner import run_experiment
    from nnactive_core.experiment.signals import describe, signal_number

    try:
        state = run_experiment(layout, allow_version_change=allow_version_change, echo=_echo)
    except KeyboardInterrupt as interrupt:
        click.echo(
            f"experiment {layout.name} stopped by {describe(interrupt)}; "
            f"`nnactive run --experiment {layout.name}` resumes it",
            err=True,
        )
        raise SystemExit(128 + signal_number(interrupt)) from None
    if state.finished:
        click.echo(f"experiment {layout.name} finished; results in {layout.results}")


@click.command("setup")
@config_options
def setup(**options) -> None:
    """Set up an experiment: folders, starting budget (loop 0), partial labels, plans and splits."""
    from nnactive_core.experiment.setup import setup_experiment

    with user_errors():
        roots = roots_from_env()
        config = build_config(options, roots)
        layout = setup_experiment(config, roots, echo=_echo)
    click.echo(f"experiment {layout.name}")
    click.echo(f"  results: {layout.results}")
    click.echo(f"  nnU-Net raw: {layout.raw}")
    click.echo(f"run it with: nnactive run --experiment {layout.name}")


@click.command("run")
@click.option("--experiment", "-e", "experiment", help="Name of an experiment that was set up.")
@click.option(
    "--allow-version-change", is_flag=True, help="Resume although nnactive or a plugin changed version."
)
@config_options
def run(experiment: str | None, allow_version_change: bool, **options) -> None:
    """Run or resume an experiment: `--experiment NAME`, or the short form with `--strategy` and
    `--dataset` (and other options), which sets the experiment up first if needed."""
    from nnactive_core.experiment.setup import setup_experiment

    given = [flag for flag, name, _ in CONFIG_OPTIONS if options.get(name) is not None]
    with user_errors():
        roots = roots_from_env()
        if experiment is not None:
            if given or options.get("config_file"):
                raise click.UsageError(
                    f"--experiment takes no config options (got {', '.join(given) or '--config'})"
                )
            layout = find_experiment(roots, experiment)
            if layout is None:
                raise LayoutError(
                    f"experiment {experiment!r} not found under {roots.results}; see `nnactive status`"
                )
        else:
            layout = setup_experiment(build_config(options, roots), roots, echo=_echo)
        run_one(layout, allow_version_change)


@click.command("status")
@click.option("--experiment", "-e", "experiment", help="Only this experiment.")
def status(experiment: str | None) -> None:
    """Per experiment: loop, step, budget spent, last mean Dice, warnings and state (with the last
    error); then the warnings of every loop (classes not learned, Dice falling)."""
    from rich.console import Console

    from nnactive_core.launchers.status import progress_table, warning_lines

    with user_errors():
        roots = roots_from_env()
        if experiment is not None:
            layout = find_experiment(roots, experiment)
            if layout is None:
                raise LayoutError(f"experiment {experiment!r} not found under {roots.results}")
            layouts = [layout]
        else:
            from nnactive_core.experiment.layout import list_experiments

            layouts = list_experiments(roots)
    if not layouts:
        click.echo(f"no experiments under {roots.results}")
        return
    Console(width=max(100, Console().width)).print(progress_table(layouts))
    for line in warning_lines(layouts):
        click.echo(line)


@click.command("remove")
@click.option("--experiment", "-e", "experiment", required=True, help="Name of the experiment to remove.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def remove(experiment: str, yes: bool) -> None:
    """Remove an experiment: its results, nnU-Net raw, preprocessed and trained-model folders, and its
    id. Refused while a run holds the experiment; the base dataset is never touched."""
    from nnactive_core.experiment.lock import lock_holder
    from nnactive_core.experiment.removal import existing_parts, remove_experiment

    with user_errors():
        roots = roots_from_env()
        layout = find_experiment(roots, experiment)
        if layout is None:
            raise LayoutError(
                f"experiment {experiment!r} not found under {roots.results}; see `nnactive status`"
            )
        holder = lock_holder(layout.results)
        if holder is not None:
            raise click.ClickException(
                f"experiment {layout.name} is running ({holder.describe()}); stop it before removing it"
            )
        parts = existing_parts(layout)
        for path in parts:
            click.echo(f"  {path}", err=True)
        if not yes:
            click.confirm(f"remove experiment {layout.name} ({len(parts)} folders)?", abort=True, err=True)
        remove_experiment(layout)
    click.echo(f"removed experiment {layout.name}")


def demo_roots(output: Path | None) -> Roots:
    """--output, else the exported nnActive folders, else ./nnactive_demo."""
    if output is not None:
        return Roots.under(output)
    if os.environ.get(RAW_ENV) and os.environ.get(DATA_ENV):
        return Roots.from_env()
    return Roots.under(Path.cwd() / DEMO_FOLDER)


@click.command("demo")
@click.option("--strategy", help="Query strategy [pred_entropy if its plugin is installed, else random].")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Folder for data, results and analysis [./{DEMO_FOLDER}, or the nnActive_* folders].",
)
@click.option("--loops", type=click.IntRange(min=2), default=3, show_default=True)
@click.option("--seed", type=int, default=12345, show_default=True)
@click.option("--device", help="Torch device (default: cuda if available, else cpu).")
def demo(strategy: str | None, output: Path | None, loops: int, seed: int, device: str | None) -> None:
    """A complete active-learning experiment on the built-in demo dataset: real nnU-Net (tiny
    profile), then the analysis with the results table and the learning curve."""
    from nnactive_core.experiment.demo import demo_config
    from nnactive_core.experiment.setup import setup_experiment

    with user_errors():
        roots = demo_roots(output)
        config = demo_config(strategy=strategy, loops=loops, seed=seed, device=device)
        click.echo(f"demo: {config.strategy}, {loops} loops; results under {roots.results}", err=True)
        layout = setup_experiment(config, roots, echo=_echo)
        run_one(layout, allow_version_change=False)
    from nnactive_core.analysis.report import AnalysisError, analyze

    try:
        report = analyze(roots.results_group(config.dataset), roots.analysis(config.dataset))
    except AnalysisError as error:
        raise click.ClickException(f"analysis of {roots.results_group(config.dataset)}: {error}") from None
    click.echo(f"results table: {report.main_table}")
    for path in report.learning_curves:
        click.echo(f"learning curve: {path}")
    for line in report.warnings:
        click.echo(f"warning: {line}", err=True)
