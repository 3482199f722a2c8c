"""The established nnActive's command names with their option names, for its users' scripts and
habits. Each forwards to the nnactive command that does the same (see docs/coming-from-nnactive.md
for the mapping and what differs); ``setup_experiment`` and ``run_experiment`` are ``setup`` and
``run`` themselves, whose ``--experiment`` already is the established option. None is listed by
``nnactive --help``."""

from __future__ import annotations

from pathlib import Path

import click

from nnactive_core.cli import completion

ALIAS_NOTE = "Established nnActive name of `nnactive {target}`."


@click.command("analyze_experiments", help=ALIAS_NOTE.format(target="analyze"))
@click.option(
    "--base_path",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder searched for experiment results ($nnActive_results): `analyze --results`.",
)
@click.option(
    "--output_path",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for tables and plots: `analyze --output`.",
)
@click.option(
    "--raw_path",
    type=click.Path(file_okay=False, path_type=Path),
    help="Accepted for the established command line and not needed: every experiment records its "
    "folders in its paths.json  [default: unused]",
)
@click.pass_context
def analyze_experiments(
    ctx: click.Context, base_path: Path, output_path: Path, raw_path: Path | None
) -> None:
    from nnactive_core.cli.analyze import analyze

    ctx.invoke(analyze, results=base_path, output=output_path)


@click.command("visualize_queries_images", help=ALIAS_NOTE.format(target="visualize-queries"))
@click.option(
    "--raw_folder",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The experiment's nnU-Net raw folder ($nnActive_data/<base>/nnUNet_raw/DatasetNNN_<name>); "
    "its name is the experiment's: `visualize-queries --experiment`.",
)
@click.option(
    "--output_folder",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the pictures: `visualize-queries --output`.",
)
@click.pass_context
def visualize_queries_images(ctx: click.Context, raw_folder: Path, output_folder: Path) -> None:
    from nnactive_core.cli.analyze import visualize_queries

    ctx.invoke(visualize_queries, experiment=Path(raw_folder).name, output=output_folder)


@click.command("init_create_val_split", help=ALIAS_NOTE.format(target="data split"))
@click.option(
    "--dataset_id",
    required=True,
    shell_complete=completion.datasets,
    help="The base dataset, by id (4) or name: `data split DATASET`.",
)
@click.option("--test_size", default="0.25", help="Fraction or number of validation cases: `--test-size`.")
@click.option(
    "--level_seperator",
    default=None,
    help="Cases agreeing up to the last SEP are one patient: `--group-separator`  [default: none: every "
    "case is its own patient]",
)
@click.pass_context
def init_create_val_split(
    ctx: click.Context, dataset_id: str, test_size: str, level_seperator: str | None
) -> None:
    from nnactive_core.cli.data import split

    ctx.invoke(split, dataset=dataset_id, test_size=test_size, group_separator=level_seperator)


@click.command("init_resample_from_id", help=ALIAS_NOTE.format(target="data resample"))
@click.option(
    "--dataset_id",
    required=True,
    shell_complete=completion.datasets,
    help="The base dataset, by id (4) or name: `data resample DATASET`.",
)
@click.option("--workers", required=True, type=click.IntRange(min=1), help="Worker processes: `--processes`.")
@click.option("--configuration", default="3d_fullres", help="nnU-Net configuration of the target spacing.")
@click.pass_context
def init_resample_from_id(ctx: click.Context, dataset_id: str, workers: int, configuration: str) -> None:
    from nnactive_core.cli.data import resample

    ctx.invoke(resample, dataset=dataset_id, processes=workers, configuration=configuration)
