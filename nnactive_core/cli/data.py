"""``nnactive data``: build the demo dataset, import MSD tasks, split, plan, resample, derive and check
base datasets. Every step is idempotent; a failure exits non-zero with one line naming the file."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from nnactive_core.cli.options import dataset_argument

DATASET_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into a one-line message and a non-zero exit."""
    try:
        yield
    except click.ClickException:
        raise
    except (ValueError, KeyError, OSError, RuntimeError) as error:
        raise click.ClickException(_one_line(error)) from None


@contextmanager
def _progress(description: str) -> Iterator[Callable[[int, int], None]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def _nnunet_folders(dataset_dir: Path, preprocessed: Path | None):
    """The nnU-Net folders around ``dataset_dir``: the raw folder holding it and ``preprocessed``, by
    default ``nnUNet_preprocessed`` beside it (``$nnActive_raw/nnUNet_preprocessed`` for
    ``$nnActive_raw/nnUNet_raw/DatasetXXX``)."""
    from nnactive_core.nnunet.environment import NnunetFolders

    root = (
        preprocessed
        if preprocessed is not None
        else NnunetFolders.under(dataset_dir.parent.parent).preprocessed
    )
    return NnunetFolders(
        raw=dataset_dir.parent, preprocessed=root, results=NnunetFolders.under(root.parent).results
    )


@click.group()
def data() -> None:
    """Prepare and check datasets.

    Typical order for a real dataset: import-msd (or bring an nnU-Net raw folder), split, plan, resample,
    then set up experiments. The demo dataset needs none of it.

    DATASET (or -d DATASET) is the dataset's folder, or its id (4), folder name
    (Dataset004_Hippocampus) or name (Hippocampus) in $nnActive_raw/nnUNet_raw (or $nnUNet_raw).
    """


@data.command()
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to put the dataset in (e.g. $nnActive_raw/nnUNet_raw), or the dataset folder itself.",
)
@click.option("--seed", type=int, default=0, help="Seed of the phantoms.")
@click.option("--cases", type=click.IntRange(min=1), default=30, help="Pool cases.")
@click.option(
    "--validation-cases",
    type=click.IntRange(min=0),
    default=8,
    help="Held-out validation cases.",
)
@click.option("--size", type=click.IntRange(min=16), default=64, help="Voxels per axis.")
@click.option(
    "--id", "dataset_id", type=click.IntRange(min=1, max=999), default=None, help="Dataset id  [default: 900]"
)
def demo(
    output: Path, seed: int, cases: int, validation_cases: int, size: int, dataset_id: int | None
) -> None:
    """Build the demo dataset (procedurally generated 3D phantoms) and print its class fractions."""
    from nnactive_core.datasets.demo import DemoParameters, build_demo_dataset, class_fractions
    from nnactive_core.datasets.nnunet_raw import NnunetRawDataset

    with _user_errors():
        parameters = DemoParameters(seed=seed, n_cases=cases, n_validation=validation_cases, size=size)
        with _progress("generating phantoms") as progress:
            folder, built = build_demo_dataset(output, parameters, dataset_id=dataset_id, progress=progress)
        dataset = NnunetRawDataset(folder)
        click.echo(
            f"{'built' if built else 'already there'}: {folder} ({len(dataset.pool_cases())} pool, "
            f"{len(dataset.validation_cases())} validation cases)"
        )
        click.echo("class fractions of the pool:")
        for name, fraction in class_fractions(dataset).items():
            click.echo(f"  {name:<12} {100 * fraction:8.3f} %")


SPLIT_SETTINGS = ("test_size", "group_separator", "seed", "validation_cases", "fold")


@data.command()
@click.option(
    "--test-size",
    default="0.25",
    help="Fraction (0.25) or number (20) of cases, or of patient groups with --group-separator.",
)
@click.option(
    "--group-separator",
    default=None,
    help="Cases whose names agree up to the last SEP are one patient and stay together  [default: none: "
    "every case is its own patient]",
)
@click.option("--seed", type=int, default=12345, help="Seed of the shuffle that picks the validation cases.")
@click.option(
    "--validation-cases",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Hold out the cases this file names instead: one case per line, or nnU-Net's "
    "splits_final.json (the 'val' cases of --fold)  [default: none: a seeded split]",
)
@click.option(
    "--fold", type=click.IntRange(min=0), default=0, show_default=True, help="Fold of a splits_final.json."
)
@dataset_argument
@click.pass_context
def split(
    ctx: click.Context,
    dataset_dir: Path,
    test_size: str,
    group_separator: str | None,
    seed: int,
    validation_cases: Path | None,
    fold: int,
) -> None:
    """Hold out a validation set: move cases from imagesTr/labelsTr into imagesVal/labelsVal.

    Beware of leakage: cases of one patient (several scans of one subject, tiles or halves of one
    image) must all stay on one side, or the held-out Dice measures recall of that patient rather than
    generalisation. Name such cases alike up to a separator and pass --group-separator, or give the
    split yourself with --validation-cases. A dataset is split once: on a split dataset, settings that
    would choose another validation set are refused.
    """
    from click.core import ParameterSource

    from nnactive_core.datasets.prepare import parse_test_size, split_validation

    requested = [
        f"--{name.replace('_', '-')}"
        for name in SPLIT_SETTINGS
        if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)
    ]
    seeded = [flag for flag in requested if flag not in ("--validation-cases", "--fold")]
    if validation_cases is not None and seeded:
        raise click.UsageError(f"--validation-cases gives the split itself; drop {', '.join(seeded)}")
    if validation_cases is None and "--fold" in requested:
        raise click.UsageError("--fold picks a fold of a splits_final.json given with --validation-cases")
    with _user_errors():
        size = parse_test_size(test_size)
        with _progress("moving validation cases") as progress:
            result = split_validation(
                dataset_dir,
                size,
                group_separator,
                seed,
                progress=progress,
                given=validation_cases,
                fold=fold,
                requested=requested,
            )
    state = "split" if result.moved else "already split"
    click.echo(f"{state}: {dataset_dir} ({len(result.pool)} pool, {len(result.validation)} validation cases)")


@data.command()
@click.option(
    "--preprocessed",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="nnU-Net preprocessed root  [default: nnUNet_preprocessed beside the dataset's nnUNet_raw]",
)
@click.option(
    "--processes", type=click.IntRange(min=1), default=None, help="Worker processes  [default: nnU-Net's]"
)
@click.option("--verify", is_flag=True, help="Also run nnU-Net's own dataset integrity check.")
@click.option("--force", is_flag=True, help="Plan again even if plans exist.")
@dataset_argument
def plan(
    dataset_dir: Path, preprocessed: Path | None, processes: int | None, verify: bool, force: bool
) -> None:
    """Fingerprint and plan the dataset with nnU-Net (needed by resample)."""
    from nnactive_core.datasets.validate import check_dataset
    from nnactive_core.nnunet.plans import plans_file

    folders = _nnunet_folders(dataset_dir, preprocessed)
    planned = plans_file(folders, dataset_dir.name)
    if planned.is_file() and not force:
        click.echo(f"already planned: {planned}")
        return
    with _user_errors():
        check_dataset(dataset_dir, level="full")
        from nnactive_core.nnunet.planning import plan_dataset

        click.echo(f"planning {dataset_dir.name} with nnU-Net ...", err=True)
        planned = plan_dataset(folders, dataset_dir.name, num_processes=processes, verify=verify)
    click.echo(f"planned: {planned}")


@data.command()
@click.option(
    "--configuration", default="3d_fullres", help="nnU-Net configuration whose spacing is the target."
)
@click.option(
    "--preprocessed",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="nnU-Net preprocessed root holding the plans  [default: beside the dataset's nnUNet_raw]",
)
@click.option("--processes", type=click.IntRange(min=1), default=1, help="Worker processes.")
@dataset_argument
def resample(dataset_dir: Path, configuration: str, preprocessed: Path | None, processes: int) -> None:
    """Resample every case to the plans' spacing; originals move to *_original folders."""
    from nnactive_core.nnunet.plans import plans_file
    from nnactive_core.nnunet.resample import is_resampled, resample_dataset

    plans = plans_file(_nnunet_folders(dataset_dir, preprocessed), dataset_dir.name)
    with _user_errors():
        if is_resampled(dataset_dir):
            click.echo(f"already resampled: {dataset_dir}")
            return
        with _progress("resampling cases") as progress:
            result = resample_dataset(dataset_dir, plans, configuration, processes, progress)
    spacing = ", ".join(f"{s:g}" for s in result.spacing)
    click.echo(f"resampled {result.cases} case(s) of {dataset_dir} to spacing ({spacing}) (z, y, x)")


@data.command()
@click.option(
    "--target-id", type=click.IntRange(min=1, max=999), required=True, help="Id of the derived dataset."
)
@click.option(
    "--fraction",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=0.2,
    help="Fraction of the cases copied (pool and validation alike).",
)
@click.option("--seed", type=int, default=12345, help="Seed of the cases' draw.")
@dataset_argument
def derive(dataset_dir: Path, target_id: int, fraction: float, seed: int) -> None:
    """Copy a seeded fraction of the cases into DatasetNNN_<name>_small beside the dataset."""
    from nnactive_core.datasets.prepare import derive_dataset

    with _user_errors():
        with _progress("copying cases") as progress:
            target, made = derive_dataset(dataset_dir, target_id, fraction, seed, progress=progress)
    click.echo(f"{'derived' if made else 'already there'}: {target}")


@data.command("import-msd")
@click.argument("task_dir", type=DATASET_DIR)
@click.option(
    "--id",
    "dataset_id",
    type=click.IntRange(min=1, max=999),
    default=None,
    help="Dataset id  [default: the task number]",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="nnU-Net raw root  [default: $nnActive_raw/nnUNet_raw]",
)
@click.option("--processes", type=click.IntRange(min=1), default=1, help="Worker processes.")
def import_msd_command(task_dir: Path, dataset_id: int | None, output: Path | None, processes: int) -> None:
    """Convert a Medical Segmentation Decathlon task with nnU-Net's own converter."""
    from nnactive_core.experiment.layout import RAW_ENV

    if output is None:
        raw = os.environ.get(RAW_ENV)
        if not raw:
            raise click.ClickException(f"environment variable {RAW_ENV} not set: set it or pass --output")
        from nnactive_core.nnunet.environment import NnunetFolders

        output = NnunetFolders.under(raw).raw
    with _user_errors():
        from nnactive_core.nnunet.msd import import_msd

        target, made = import_msd(task_dir, output, dataset_id, processes)
    click.echo(f"{'imported' if made else 'already there'}: {target}")


@data.command()
@click.option(
    "--level",
    type=click.Choice(["structure", "headers", "full"]),
    default="full",
    help="structure: dataset.json and file names; headers: + image geometry; full: + every voxel.",
)
@dataset_argument
def check(dataset_dir: Path, level: str) -> None:
    """List every problem of a dataset; exit 0 only when there is none."""
    from nnactive_core.datasets.nnunet_raw import NnunetRawDataset
    from nnactive_core.datasets.validate import validate_dataset

    with _user_errors():
        with _progress("checking cases") as progress:
            problems = validate_dataset(dataset_dir, level=level, progress=progress)
    for problem in problems:
        click.echo(f"{problem.file}: {' '.join(problem.message.split())}")
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s) in {dataset_dir}")
    dataset = NnunetRawDataset(dataset_dir)
    click.echo(
        f"ok: {dataset_dir} ({len(dataset.pool_cases())} pool, {len(dataset.validation_cases())} "
        "validation cases)"
    )
