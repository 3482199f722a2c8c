"""``nnactive-atlas``: build the dataset without running an experiment (and print its class fractions)."""

from __future__ import annotations

from pathlib import Path

import click

from nnactive_dataset_atlas.build import HEMISPHERES, LABEL_SETS, AtlasOptions


def _tile(text: str) -> list[int] | int:
    parts = [p for p in text.replace("x", ",").split(",") if p]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise click.BadParameter(f"expected one number or Z,Y,X, got {text!r}") from None
    return values[0] if len(values) == 1 else values


@click.group()
def main() -> None:
    """The nnactive brain-atlas example dataset."""


@main.command()
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to put the dataset in (e.g. $nnActive_raw/nnUNet_raw), or the DatasetNNN_Name folder.",
)
@click.option("--label-set", type=click.Choice(list(LABEL_SETS)), default="tissue", show_default=True)
@click.option(
    "--spacing", type=float, default=AtlasOptions().spacing, show_default=True, help="Voxel size in mm."
)
@click.option("--tile", default="48", show_default=True, help="Largest tile edge in voxels: N or Z,Y,X.")
@click.option(
    "--threshold",
    type=float,
    default=AtlasOptions().threshold,
    show_default=True,
    help="Minimum atlas probability (percent) for a labelled voxel.",
)
@click.option("--pool-hemisphere", type=click.Choice(HEMISPHERES), default="left", show_default=True)
def build(
    output: Path, label_set: str, spacing: float, tile: str, threshold: float, pool_hemisphere: str
) -> None:
    """Build the dataset (once; a rerun with the same options finds it) and print its class fractions."""
    from nnactive_core.datasets.demo import class_fractions
    from nnactive_core.datasets.nnunet_raw import NnunetRawDataset
    from nnactive_core.datasets.raw_format import DatasetError
    from nnactive_dataset_atlas.build import build_atlas_dataset, options_from
    from nnactive_dataset_atlas.sources import installed_sources

    try:
        options = options_from(
            {
                "label_set": label_set,
                "spacing": spacing,
                "tile": _tile(tile),
                "threshold": threshold,
                "pool_hemisphere": pool_hemisphere,
            }
        )
        folder, built = build_atlas_dataset(output, installed_sources(), options)
    except (DatasetError, ValueError, OSError) as error:
        raise click.ClickException(" ".join(str(error).split())) from None
    dataset = NnunetRawDataset(folder)
    click.echo(
        f"{'built' if built else 'already there'}: {folder} ({len(dataset.pool_cases())} pool, "
        f"{len(dataset.validation_cases())} validation cases)"
    )
    for split in ("pool", "validation"):
        click.echo(f"class fractions ({split}):")
        for name, fraction in class_fractions(dataset, split).items():
            click.echo(f"  {name:<12} {100 * fraction:8.3f} %")
