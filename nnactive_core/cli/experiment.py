"""``nnactive setup``, ``nnactive run`` and ``nnactive remove``.

An experiment is named by its folder, ``DatasetNNN_<experiment name>``: that is what these commands
print and what ``--experiment`` takes (the name without its ``DatasetNNN_`` prefix works too). A name
in the established format for an experiment that does not exist yet sets it up from the name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from nnactive_core.cli.experiment_options import (
    build_config,
    chosen_trackers,
    config_options,
    experiment_option,
    named_experiment,
    tracker_options,
)
from nnactive_core.experiment.config import ConfigError, ExperimentConfig
from nnactive_core.experiment.layout import ExperimentLayout, LayoutError, Roots


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


def roots_from_env() -> Roots:
    return Roots.from_env()


def echo_err(line: str) -> None:
    click.echo(line, err=True)


def query_picture(layout: ExperimentLayout, loop: int) -> Path | None:
    """The overview of loop file ``loop``'s patches, for the trackers."""
    from nnactive_core.analysis.queries import visualize_queries

    overviews = visualize_queries(layout.results, layout.query_pictures(loop), loops=[loop])
    return overviews[0] if overviews else None


def run_one(layout: ExperimentLayout, allow_version_change: bool, trackers: list[str] | None = None) -> None:
    from nnactive_core.experiment.run import run_experiment
    from nnactive_core.experiment.signals import describe, signal_number

    try:
        state = run_experiment(
            layout,
            allow_version_change=allow_version_change,
            echo=echo_err,
            trackers=trackers,
            query_picture=query_picture,
        )
    except KeyboardInterrupt as interrupt:
        click.echo(
            f"experiment {layout.folder} stopped by {describe(interrupt)}; "
            f"`nnactive run --experiment {layout.folder}` resumes it",
            err=True,
        )
        raise SystemExit(128 + signal_number(interrupt)) from None
    if state.stopped:
        click.echo(
            f"experiment {layout.folder} stopped early after loop {state.loop} ({state.stopped}); "
            f"results in {layout.results}"
        )
    elif state.finished:
        click.echo(f"experiment {layout.folder} finished; results in {layout.results}")


@click.command("setup")
@experiment_option(
    "Experiment to set up by its name: an existing one finishes its setup; a new name in the established "
    "format (Hippocampus__patch-20_20_20__sb-...__seed-N) sets it up from the name  [default: the "
    "experiment the config options describe]"
)
@config_options
def setup(experiment: str | None, **options) -> None:
    """Set up an experiment: folders, starting budget (loop 0), partial labels, plans and splits."""
    from nnactive_core.experiment.setup import setup_experiment

    with user_errors():
        roots = roots_from_env()
        if experiment is None:
            config = build_config(options, roots)
        else:
            named = named_experiment(experiment, options, roots)
            config = ExperimentConfig.load(named.results) if isinstance(named, ExperimentLayout) else named
        layout = setup_experiment(config, roots, echo=echo_err)
    click.echo(f"experiment {layout.folder}")
    click.echo(f"  results: {layout.results}")
    click.echo(f"  nnU-Net raw: {layout.raw}")
    click.echo(f"run it with: nnactive run --experiment {layout.folder}")


@click.command("run")
@experiment_option(
    "Experiment to run or resume, by its name; a new name in the established format sets it up first  "
    "[default: the experiment the config options describe]"
)
@click.option(
    "--allow-version-change", is_flag=True, help="Resume although nnactive or a plugin changed version."
)
@tracker_options
@config_options
def run(
    experiment: str | None, allow_version_change: bool, trackers: tuple[str, ...], no_tracker: bool, **options
) -> None:
    """Run or resume an experiment: `--experiment NAME`, or the short form with `--strategy` and
    `--dataset` (and other options), which sets the experiment up first if needed."""
    from nnactive_core.experiment.setup import setup_experiment

    with user_errors():
        chosen = chosen_trackers(trackers, no_tracker)
        roots = roots_from_env()
        named = (
            build_config(options, roots)
            if experiment is None
            else named_experiment(experiment, options, roots)
        )
        if not isinstance(named, ExperimentLayout):
            named = setup_experiment(named, roots, echo=echo_err)
        run_one(named, allow_version_change, chosen)


@click.command("remove")
@click.option("--experiment", "-e", "experiment", required=True, help="Name of the experiment to remove.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def remove(experiment: str, yes: bool) -> None:
    """Remove an experiment: its results, nnU-Net raw, preprocessed and trained-model folders, and its
    id. Refused while a run holds the experiment; the base dataset is never touched."""
    from nnactive_core.experiment.layout import find_experiment
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
                f"experiment {layout.folder} is running ({holder.describe()}); stop it before removing it"
            )
        parts = existing_parts(layout)
        for path in parts:
            click.echo(f"  {path}", err=True)
        if not yes:
            click.confirm(f"remove experiment {layout.folder} ({len(parts)} folders)?", abort=True, err=True)
        remove_experiment(layout)
    click.echo(f"removed experiment {layout.folder}")
