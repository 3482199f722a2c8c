"""``nnactive status``: where every experiment stands, as a table or as JSON (the schema is in
docs/cli.md, "Status as JSON"). Loops are numbered from 0, as their files are."""

from __future__ import annotations

import json

import click

from nnactive_core.cli import completion
from nnactive_core.cli.experiment import user_errors
from nnactive_core.experiment.layout import LayoutError, Roots, find_experiment, list_experiments


@click.command("status")
@click.option(
    "--experiment",
    "-e",
    "experiment",
    help="Only this experiment  [default: every experiment]",
    shell_complete=completion.experiments,
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: one record per experiment.")
def status(experiment: str | None, as_json: bool) -> None:
    """Per experiment: loop, step, budget spent, last mean Dice, warnings recorded and state (with
    the last error); then the warnings (classes not learned, Dice falling, a tracker that failed)."""
    from nnactive_core.launchers.status import (
        experiment_status,
        progress_table,
        status_records,
        warning_lines,
    )

    with user_errors():
        roots = Roots.from_env()
        if experiment is not None:
            layout = find_experiment(roots, experiment)
            if layout is None:
                raise LayoutError(f"experiment {experiment!r} not found under {roots.results}")
            layouts = [layout]
        else:
            layouts = list_experiments(roots)
    statuses = [experiment_status(layout) for layout in layouts]
    if as_json:
        click.echo(json.dumps(status_records(statuses), indent=2))
        return
    if not layouts:
        click.echo(f"no experiments under {roots.results}")
        return
    from rich.console import Console

    Console(width=max(120, Console().width)).print(progress_table(statuses))
    for line in warning_lines(statuses):
        click.echo(line)
