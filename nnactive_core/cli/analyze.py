"""``nnactive analyze`` and ``nnactive visualize-queries``: tables and pictures from experiment results."""

from __future__ import annotations

from pathlib import Path

import attrs
import click

from nnactive_core.cli.completion import experiments


@click.command("analyze")
@click.option(
    "--results",
    "results",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder searched for experiment results (e.g. $nnActive_results or one base's group).",
)
@click.option(
    "--output",
    "output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for tables and plots.",
)
@click.option(
    "--alpha",
    default=0.05,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Significance level of the pairwise tests and rankings.",
)
@click.option("--holm", is_flag=True, help="Holm-correct the pairwise penalty matrix's p-values.")
@click.option(
    "--reference",
    "reference",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Full-data mean Dice per base dataset: {"Dataset004_Hippocampus": 0.895} (or nnU-Net '
    "summaries), the c of the FG-efficiency fit  [default: the best observed Dice]",
)
@click.option(
    "--x-metric",
    "x_metrics",
    multiple=True,
    metavar="COLUMN",
    help="Recorded cost column to plot Dice against, with AUBC and ranking at equal cost on a common "
    "cost grid (repeatable; e.g. foreground_voxels)  [default: annotation_seconds]",
)
@click.option(
    "--stop-when",
    "stop_when",
    default="stable",
    metavar="stable[:THRESHOLD[,LOOPS]]",
    help="The stopping rule stopping.csv applies to each run's recorded signal: where it would have "
    "stopped and the Dice given up  [default: stable, i.e. stable:0.95,2]",
)
def analyze(
    results: Path,
    output: Path,
    alpha: float,
    holm: bool,
    reference: Path | None,
    x_metrics: tuple[str, ...],
    stop_when: str,
) -> None:
    """Learning curves, AUBC, FG efficiency, pairwise penalty matrices and rankings for every base
    dataset and setting found below --results, and summary.json (the main table, every plot written
    and what is missing) for scripts. Works on unfinished experiments."""
    from nnactive_core.analysis.report import AnalysisError, AnalysisOptions, load_references
    from nnactive_core.analysis.report import analyze as run_analysis
    from nnactive_core.experiment.stopping import StopSpecError, parse_stop_when

    try:
        rule = parse_stop_when(stop_when)
    except StopSpecError as error:
        raise click.BadParameter(str(error), param_hint="'--stop-when'") from None

    if not results.is_dir():
        raise click.ClickException(f"--results {results}: no such folder")
    try:
        references = load_references(reference) if reference is not None else {}
        options = AnalysisOptions(alpha=alpha, holm=holm, references=references, stop_rule=rule)
        if x_metrics:
            options = attrs.evolve(options, x_metrics=x_metrics)
        report = run_analysis(results, output, options)
    except AnalysisError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"main table: {report.main_table}")
    if report.summary_text is not None:
        click.echo(f"summary: {report.summary_text}")
    click.echo(f"summary as JSON: {report.summary_json}")
    for path in report.plots:
        click.echo(f"plot: {path}")
    click.echo(f"missing / skipped ({report.problems}): {report.missing}")
    click.echo(f"warnings ({len(report.warnings)}): {report.warnings_file}")
    for line in report.warnings:
        click.echo(f"warning: {line}", err=True)


@click.command("visualize-queries")
@click.option(
    "--experiment",
    "-e",
    required=True,
    shell_complete=experiments,
    help="The experiment's results folder, or its name (looked up below $nnActive_results).",
)
@click.option(
    "--output",
    "output",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the pictures.",
)
def visualize_queries(experiment: str, output: Path) -> None:
    """Per loop, pictures of the queried patches on image slices with the labels overlaid."""
    from nnactive_core.analysis.queries import QueryPictureError
    from nnactive_core.analysis.queries import visualize_queries as draw

    try:
        overviews = draw(experiment, output)
    except QueryPictureError as error:
        raise click.ClickException(str(error)) from None
    for path in overviews:
        click.echo(f"overview: {path}")
