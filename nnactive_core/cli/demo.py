"""``nnactive demo``: a complete experiment on the built-in demo dataset, then its analysis, and the
lines that show how to look at it with the other commands."""

from __future__ import annotations

import os
from pathlib import Path

import click

from nnactive_core.cli import completion
from nnactive_core.cli.experiment import echo_err, run_one, user_errors
from nnactive_core.cli.experiment_options import chosen_trackers, tracker_options
from nnactive_core.cli.options import check_names
from nnactive_core.experiment.layout import DATA_ENV, RAW_ENV, ExperimentLayout, Roots

DEMO_FOLDER = "nnactive_demo"


def demo_roots(output: Path | None) -> Roots:
    """--output, else the exported nnActive folders, else ./nnactive_demo."""
    if output is not None:
        return Roots.under(output)
    if os.environ.get(RAW_ENV) and os.environ.get(DATA_ENV):
        return Roots.from_env()
    return Roots.under(Path.cwd() / DEMO_FOLDER)


def closing_lines(roots: Roots, layout: ExperimentLayout, report) -> list[str]:
    """What to do after the demo: the variables that ``nnactive status`` and ``visualize-queries``
    need, where the summary is and every plot written."""
    lines = ["", "to look at it with the other commands, export the demo's folders:"]
    lines += [f"  export {name}={value}" for name, value in roots.env().items()]
    pictures = roots.results.parent / "pictures"
    lines += [
        "  nnactive status",
        f"  nnactive visualize-queries --experiment {layout.folder} --output {pictures}",
        "",
    ]
    if report.summary_text is not None:
        lines.append(f"summary: {report.summary_text}")
    lines.append(f"results table: {report.main_table}")
    lines += [f"plot: {path}" for path in report.plots]
    return lines


@click.command("demo")
@click.option(
    "--strategy",
    help="Query strategy  [default: pred_entropy if its plugin is installed, else random]",
    shell_complete=completion.registered("strategy"),
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Folder for data, results and analysis  [default: ./{DEMO_FOLDER}, or the nnActive_* folders]",
)
@click.option("--loops", type=click.IntRange(min=2), default=3, help="Loops, numbered from 0.")
@click.option("--seed", type=int, default=12345, help="Experiment seed.")
@click.option("--device", help="Torch device  [default: cuda if available, else cpu]")
@tracker_options
def demo(
    strategy: str | None,
    output: Path | None,
    loops: int,
    seed: int,
    device: str | None,
    trackers: tuple[str, ...],
    no_tracker: bool,
) -> None:
    """A complete active-learning experiment on the built-in demo dataset: real nnU-Net (tiny
    profile), then the analysis with the results table and the learning curve."""
    from nnactive_core.experiment.demo import demo_config
    from nnactive_core.experiment.setup import setup_experiment

    with user_errors():
        if strategy is not None:
            check_names("strategy", [strategy])
        chosen = chosen_trackers(trackers, no_tracker)
        roots = demo_roots(output)
        config = demo_config(strategy=strategy, loops=loops, seed=seed, device=device)
        click.echo(f"demo: {config.strategy}, {loops} loops; results under {roots.results}", err=True)
        layout = setup_experiment(config, roots, echo=echo_err)
        run_one(layout, allow_version_change=False, trackers=chosen)
    from nnactive_core.analysis.report import AnalysisError, analyze

    try:
        report = analyze(roots.results_group(config.dataset), roots.analysis(config.dataset))
    except AnalysisError as error:
        raise click.ClickException(f"analysis of {roots.results_group(config.dataset)}: {error}") from None
    for line in closing_lines(roots, layout, report):
        click.echo(line)
    for line in report.warnings:
        click.echo(f"warning: {line}", err=True)
