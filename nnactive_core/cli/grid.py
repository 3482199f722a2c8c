"""``nnactive grid``: run a grid of experiments through a launcher, show where it stands, retry what
failed. The grid is a TOML file (see :mod:`nnactive_core.launchers.grid`), command-line options, or
both; ``status`` and ``retry`` without any grid cover every experiment under ``$nnActive_results``."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from nnactive_core.cli import completion
from nnactive_core.cli.options import DATASET_HELP, base_dataset, check_names
from nnactive_core.experiment.layout import LayoutError, Roots
from nnactive_core.launchers import grid as grid_module
from nnactive_core.launchers import status as status_module
from nnactive_core.launchers.api import JobOutcome, LaunchInterrupted
from nnactive_core.launchers.grid import GridError, GridSpec


def grid_options(command):
    """The grid: an optional TOML file and options that add to or replace what it says."""
    decorators = [
        click.argument(
            "grid_file",
            metavar="[GRID.toml]",
            required=False,
            type=click.Path(dir_okay=False, path_type=Path),
        ),
        click.option(
            "-d",
            "--dataset",
            "datasets",
            multiple=True,
            shell_complete=completion.datasets,
            help=f"Base dataset (repeat for several): {DATASET_HELP}.",
        ),
        click.option(
            "--strategy",
            "strategies",
            multiple=True,
            shell_complete=completion.registered("strategy"),
            help="Query strategy (repeat for several).",
        ),
        click.option(
            "--query-size", "query_sizes", multiple=True, type=int, help="Patches per query (repeat)."
        ),
        click.option("--seed", "seeds", multiple=True, type=int, help="Experiment seed (repeat)."),
        click.option(
            "--set",
            "settings",
            multiple=True,
            metavar="FIELD=VALUE",
            help="Experiment config field shared by the grid, e.g. --set query_steps=5.",
        ),
    ]
    return functools.reduce(lambda f, decorator: decorator(f), reversed(decorators), command)


def launch_options(command):
    decorators = [
        click.option(
            "--launcher",
            "launcher",
            shell_complete=completion.registered("launcher"),
            help="Launcher name (see `nnactive plugins`): local, commands, ...  [default: the grid file's "
            "[launcher] name]",
        ),
        click.option(
            "--option",
            "launcher_options",
            multiple=True,
            metavar="KEY=VALUE",
            help="Launcher option (repeat), e.g. --option parallel=2.",
        ),
        click.option(
            "--logs",
            type=click.Path(file_okay=False, path_type=Path),
            help="Folder of the experiments' log files  [default: $nnActive_results/logs]",
        ),
        click.option(
            "--full-setup",
            is_flag=True,
            help="Run the setup step (starting budget, nnU-Net planning) here rather than in the jobs.",
        ),
        click.option(
            "--dry-run", is_flag=True, help="Show what would be launched; create and launch nothing."
        ),
        click.option(
            "--tracker",
            "trackers",
            multiple=True,
            metavar="NAME",
            shell_complete=completion.registered("tracker"),
            help="Experiment tracker of every launched experiment (repeatable), e.g. wandb.",
        ),
    ]
    return functools.reduce(lambda f, decorator: decorator(f), reversed(decorators), command)


def _spec(
    grid_file: Path | None,
    launcher: str | None = None,
    launcher_options: Sequence[str] = (),
    check_names_first: bool = False,
    **axes,
) -> GridSpec:
    """The grid of the file and the options. With ``check_names_first`` its strategy and launcher
    names are checked first, before its datasets are looked up (ids and names become folder names)."""
    from_cli = grid_module.spec_from_options(launcher=launcher, launcher_options=launcher_options, **axes)
    spec = from_cli if grid_file is None else grid_module.load_grid_file(grid_file).merged_with(from_cli)
    if check_names_first:
        strategies = spec.axes.get("strategy") or [
            spec.shared[key] for key in ("strategy",) if key in spec.shared
        ]
        check_names("strategy", [str(name) for name in strategies])
        check_names("launcher", [spec.launcher] if spec.launcher else [])
    if not spec.axes.get("dataset") and "dataset" not in spec.shared:
        return spec
    raw = _roots().base_nnunet.raw
    return grid_module.with_datasets(spec, lambda value: base_dataset(value, raw))


def _roots() -> Roots:
    try:
        return Roots.from_env()
    except LayoutError as error:
        raise click.ClickException(str(error)) from None


def _statuses(spec: GridSpec, roots: Roots) -> list[status_module.ExperimentStatus]:
    if spec.is_empty:
        return status_module.all_status(roots)
    return status_module.grid_status(roots, grid_module.expand(spec))


def _show_launcher_progress() -> None:
    """The local launcher reports each start and end through logging; show it on stderr."""
    logger = logging.getLogger("nnactive_core.launchers")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _outcome_table(outcomes: Sequence[JobOutcome], launcher: str):
    from rich.table import Table
    from rich.text import Text

    styles = {"done": "green", "failed": "red", "submitted": "cyan", "written": "cyan", "stopped": "yellow"}
    table = Table(title=f"launcher {launcher}")
    for column in ("experiment", "outcome", "detail"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        table.add_row(
            Text(outcome.experiment),
            Text(outcome.state, style=styles.get(outcome.state, "")),
            Text(outcome.detail),
        )
    return table


def _launch(
    spec: GridSpec,
    states: Sequence[str],
    logs: Path | None,
    full_setup: bool,
    dry_run: bool,
    trackers: Sequence[str] = (),
) -> None:
    from rich.console import Console
    from rich.text import Text

    from nnactive_core.plugins import PluginError
    from nnactive_core.plugins import registry as load_registry

    out, err = Console(), Console(stderr=True, soft_wrap=True)
    if not spec.launcher:
        raise click.ClickException(
            "no launcher: pass --launcher NAME (or name it under [launcher] in the grid file)"
        )
    try:
        launcher = load_registry().get("launcher", spec.launcher)
        launcher.validate_options(spec.launcher_options)
    except (PluginError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    check_names("tracker", trackers)
    roots = _roots()
    statuses = _statuses(spec, roots)
    chosen = status_module.select(statuses, states)
    skipped = [s for s in statuses if s.state not in states]
    if skipped:
        err.print(f"skipping {status_module.summary(skipped)}", highlight=False)
    for status in status_module.select(statuses, [status_module.CONFLICT]):
        err.print(Text.assemble(("conflict", "magenta"), f": {status.name} {status.detail}"))
    if status_module.FAILED not in states and status_module.select(skipped, [status_module.FAILED]):
        err.print("retry failed experiments with `nnactive grid retry --failed`", highlight=False)
    for status in chosen:
        if status.config is None:
            err.print(Text.assemble(("cannot launch", "red"), f" {status.name}: {status.detail}"))
    chosen = [status for status in chosen if status.config is not None]
    queued = launcher.active_jobs(
        [status.name for status in chosen if status.state == status_module.STOPPED], **spec.launcher_options
    )
    for name, job in queued.items():
        err.print(f"skipping {name}: {job} (still with {spec.launcher}; it resumes there)", highlight=False)
    chosen = [status for status in chosen if status.name not in queued]
    if not chosen:
        out.print("nothing to launch")
        return
    if dry_run:
        out.print(status_module.status_table(chosen, title=f"would launch with {spec.launcher}"))
        return
    layouts, setup_failures = grid_module.prepare_experiments(
        [status.config for status in chosen], roots, full_setup=full_setup
    )
    jobs = grid_module.build_jobs(layouts, roots, logs or roots.results / "logs", trackers=trackers)
    _show_launcher_progress()
    try:
        outcomes = launcher.launch(jobs, **spec.launcher_options) if jobs else []
    except (ValueError, RuntimeError, OSError) as error:
        raise click.ClickException(f"launcher {spec.launcher}: {error}") from None
    except LaunchInterrupted as interrupted:
        out.print(_outcome_table(interrupted.outcomes, spec.launcher))
        stopped = sum(outcome.state == "stopped" for outcome in interrupted.outcomes)
        err.print(
            f"interrupted: {stopped} experiment(s) stopped, each resumes with `nnactive grid run`",
            highlight=False,
        )
        raise SystemExit(128 + interrupted.signal_number) from None
    outcomes += [
        JobOutcome(experiment=name, state="failed", detail=why) for name, why in setup_failures.items()
    ]
    out.print(_outcome_table(outcomes, spec.launcher))
    failed = [outcome for outcome in outcomes if outcome.state == "failed"]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(outcomes)} experiment(s) failed")


def _guard(function):
    """Grid errors are user errors: one line, exit code 1."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except GridError as error:
            raise click.ClickException(str(error)) from None

    return wrapper


@click.group()
def grid() -> None:
    """Run grids of experiments (datasets x strategies x query sizes x seeds) through a launcher."""


@grid.command()
@grid_options
@launch_options
@_guard
def run(grid_file, launcher, launcher_options, logs, full_setup, dry_run, trackers, **axes) -> None:
    """Set up and launch every experiment of the grid that is neither done, running nor failed."""
    spec = _spec(grid_file, launcher, launcher_options, check_names_first=True, **axes)
    if spec.is_empty:
        raise click.ClickException("no grid: give a GRID.toml or --dataset/--strategy/--query-size options")
    _launch(spec, (status_module.NOT_STARTED, status_module.STOPPED), logs, full_setup, dry_run, trackers)


@grid.command()
@grid_options
@launch_options
@click.option("--failed", is_flag=True, help="Retry experiments whose last run failed.")
@click.option(
    "--stopped", is_flag=True, help="Retry experiments stopped without an error (killed, pre-empted)."
)
@_guard
def retry(
    grid_file, launcher, launcher_options, logs, full_setup, dry_run, trackers, failed, stopped, **axes
) -> None:
    """Launch again the failed (and/or stopped) experiments of the grid, or of all experiments."""
    if not (failed or stopped):
        raise click.UsageError("say what to retry: --failed and/or --stopped")
    states = [
        state
        for state, wanted in ((status_module.FAILED, failed), (status_module.STOPPED, stopped))
        if wanted
    ]
    spec = _spec(grid_file, launcher, launcher_options, check_names_first=True, **axes)
    _launch(spec, states, logs, full_setup, dry_run, trackers)


@grid.command()
@grid_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_guard
def status(grid_file, as_json, **axes) -> None:
    """Loop, step and state of every experiment of the grid (or of all experiments)."""
    spec = _spec(grid_file, **axes)
    statuses = _statuses(spec, _roots())
    if as_json:
        click.echo(json.dumps(status_module.status_records(statuses), indent=2))
        return
    from rich.console import Console

    console = Console()
    console.print(status_module.status_table(statuses))
    console.print(status_module.summary(statuses), highlight=False)
