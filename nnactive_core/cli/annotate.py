"""``nnactive annotate``: people in the loop. ``export`` writes a loop's queried boxes for annotators
(ITK-SNAP, 3D Slicer, MITK), ``import`` checks and stores their labels so that ``nnactive run``
continues on them, ``import-query`` turns boxes a person drew into the next loop's query."""

from __future__ import annotations

from pathlib import Path

import click

from nnactive_core.annotate.context import AnnotationError, ExperimentHandle
from nnactive_core.cli.completion import experiments

EXPERIMENT_HELP = "Experiment name, with or without its DatasetNNN_ prefix."
EXPERIMENT_OPTION = {"required": True, "help": EXPERIMENT_HELP, "shell_complete": experiments}


def _handle(name: str) -> ExperimentHandle:
    from nnactive_core.annotate.context import open_experiment
    from nnactive_core.experiment.layout import Roots

    return open_experiment(Roots.from_env(), name)


def _errors() -> tuple[type[Exception], ...]:
    from nnactive_core.datasets.raw_format import DatasetError
    from nnactive_core.experiment.config import ConfigError
    from nnactive_core.experiment.layout import LayoutError
    from nnactive_core.experiment.lock import LockedError
    from nnactive_core.experiment.setup import SetupError
    from nnactive_core.experiment.state import StateError
    from nnactive_core.plugins import PluginError

    return (DatasetError, ConfigError, LayoutError, LockedError, SetupError, StateError, PluginError, OSError)


def _fail(error: Exception, what: str) -> click.ClickException:
    """A one-line error; several problems are listed first on stderr, one line each."""
    if isinstance(error, AnnotationError) and len(error.problems) > 1:
        for line in error.problems:
            click.echo(line, err=True)
        return click.ClickException(f"{what}: {len(error.problems)} problems (listed above); nothing written")
    return click.ClickException(str(error).splitlines()[0] if str(error) else type(error).__name__)


@click.group()
def annotate() -> None:
    """Export queried boxes to annotators and import their labels (human in the loop)."""


@annotate.command("export")
@click.option("--experiment", "-e", "name", **EXPERIMENT_OPTION)
@click.option(
    "--output", required=True, type=click.Path(path_type=Path, file_okay=False), help="Folder to write."
)
@click.option(
    "--loop", type=click.IntRange(min=0), default=None, help="Loop file to export  [default: the newest]"
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["nifti", "nrrd"]),
    default="nifti",
    help="File format of the exported images, labels and masks.",
)
def export_command(name: str, output: Path, loop: int | None, file_format: str) -> None:
    """Write images, partial labels and masks of a loop's queried boxes, with instructions."""
    from nnactive_core.annotate.export import export_loop

    try:
        manifest = export_loop(_handle(name), output, loop, file_format)
    except (AnnotationError, *_errors()) as error:
        raise _fail(error, "export") from None
    boxes = sum(len(entry.patches) for entry in manifest.cases)
    click.echo(
        f"exported loop {manifest.loop} of {manifest.experiment}: {boxes} box(es) in "
        f"{len(manifest.cases)} case(s) to {Path(output).absolute()}; see INSTRUCTIONS.txt there"
    )


@annotate.command("import")
@click.option("--experiment", "-e", "name", **EXPERIMENT_OPTION)
@click.option(
    "--input",
    "folder",
    required=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="The export folder, with the annotators' files in labels/.",
)
@click.option("--loop", type=click.IntRange(min=0), default=None, help="Loop  [default: the export's]")
def import_command(name: str, folder: Path, loop: int | None) -> None:
    """Check annotators' labels and store them; `nnactive run` then continues on them."""
    from nnactive_core.annotate.ingest import import_labels

    try:
        summary = import_labels(_handle(name), folder, loop)
    except (AnnotationError, *_errors()) as error:
        raise _fail(error, "import rejected") from None
    click.echo(
        f"imported loop {summary.loop} labels of {len(summary.cases)} case(s) into {summary.folder}; "
        "`nnactive run` continues the experiment on them"
    )


@annotate.command("import-query")
@click.option("--experiment", "-e", "name", **EXPERIMENT_OPTION)
@click.option(
    "--input",
    "path",
    required=True,
    type=click.Path(path_type=Path, exists=True),
    help="A JSON loop file, or a folder of masks <case>.nii.gz whose components are the boxes.",
)
def import_query_command(name: str, path: Path) -> None:
    """Use boxes drawn by a person as the next loop's query."""
    from nnactive_core.annotate.manual import import_query
    from nnactive_core.patches.patch import loop_file_name

    try:
        loop, patches = import_query(_handle(name), path)
    except (AnnotationError, *_errors()) as error:
        raise _fail(error, "query rejected") from None
    cases = len({patch.file for patch in patches})
    click.echo(
        f"wrote {loop_file_name(loop)}: {len(patches)} box(es) in {cases} case(s); next: "
        f"`nnactive annotate export --experiment {name} --output DIR`"
    )
