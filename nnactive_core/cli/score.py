"""``nnactive score``: one case's voxel score map, or with ``--patch-size`` its aggregated patch-score
map (unperturbed), from stored probabilities.

Output by ending: ``.npy`` holds the whole pools x Z x Y x X (or pools x grid) float32 array.
``.nii.gz`` (to look at in a viewer) holds one pool per file: ``NAME.nii.gz`` when the strategy has
one pool, else ``NAME_pool-<id>.nii.gz`` per pool (``global`` for the global pool). Patch-score maps
are written on the grid of patch starts with the stride as voxel spacing, so they overlay the image
(origin 0, unit spacing) at the patch starts.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from nnactive_core.cli.completion import registered
from nnactive_core.cli.options import TRIPLE
from nnactive_core.cli.query import (
    check_probability_shape,
    checked_device,
    label_values,
    read_probabilities,
    resolve_strategy,
    writable_output,
    write_output,
)
from nnactive_core.datasets.raw_format import write_image
from nnactive_core.io import atomic_write_bytes

NIFTI = ".nii.gz"


def pool_file(out: Path, pool: int, pools: int) -> Path:
    """Output file of one pool for a ``.nii.gz`` output."""
    if pools == 1:
        return out
    tag = "global" if pool < 0 else str(pool)
    return out.with_name(f"{out.name[: -len(NIFTI)]}_pool-{tag}{NIFTI}")


def _write_nifti(path: Path, values: np.ndarray, spacing: tuple[int, int, int]) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(values, dtype=np.float32))
    # SimpleITK orders spacing x, y, z; arrays are z, y, x
    image.SetSpacing(tuple(float(s) for s in reversed(spacing)))
    write_image(image, path)


def write_score_map(out: Path, values: np.ndarray, pools: tuple[int, ...], spacing=(1, 1, 1)) -> list[Path]:
    """Write ``values`` (pools x Z x Y x X) as ``.npy`` or per-pool ``.nii.gz``; returns the files."""
    out = Path(out)
    if out.name.endswith(NIFTI):
        written = []
        for index, pool in enumerate(pools):
            path = pool_file(out, pool, len(pools))
            _write_nifti(path, values[index], spacing)
            written.append(path)
        return written
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(values, dtype=np.float32))
    atomic_write_bytes(out, buffer.getvalue())
    return [out]


@click.command()
@click.option(
    "--strategy",
    "strategy_name",
    required=True,
    shell_complete=registered("strategy", "score"),
    help="Name of a score strategy (see `nnactive plugins`).",
)
@click.option(
    "--probs",
    "probs_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="One case's probabilities (.npy / .npz), members x classes x Z x Y x X.",
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output .npy or .nii.gz."
)
@click.option(
    "--patch-size",
    type=TRIPLE,
    help="Aggregate to patch scores of this size, Z,Y,X or Z Y X  [default: voxel scores]",
)
@click.option("--stride", default="1", type=TRIPLE, help="Aggregation stride Z,Y,X (one number: every axis).")
@click.option("--labels", help="Label values in channel order, e.g. '0,1,2'  [default: 0 .. classes-1]")
@click.option(
    "--dataset-json",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read label values (and background) from this dataset.json  [default: --labels]",
)
@click.option("--device", help="Torch device of the strategy  [default: cuda if available, else cpu]")
def score(strategy_name, probs_file, out, patch_size, stride, labels, dataset_json, device) -> None:
    """Write a strategy's voxel score map (or patch-score map) for one case."""
    from nnactive_core.query.engine import StrategyError, aggregate_case, score_case
    from nnactive_core.strategies.api import QueryContext, ScoreStrategy

    strategy, owner = resolve_strategy(strategy_name)
    if not isinstance(strategy, ScoreStrategy):
        raise click.ClickException(f"strategy {strategy_name!r} places patches and has no score map")
    strides = stride
    if not (out.name.endswith(NIFTI) or out.suffix == ".npy"):
        raise click.BadParameter(f"{out}: use a .npy or .nii.gz file name", param_hint="--out")
    out = writable_output(out)
    device = checked_device(device)
    try:
        probabilities = read_probabilities(probs_file)
        classes = probabilities.shape[1] if probabilities.ndim == 5 else 0
        values, background = label_values(labels, dataset_json, classes)
        check_probability_shape(probs_file, probabilities.shape, len(values))
        ctx = QueryContext(
            patch_size=patch_size or probabilities.shape[2:],
            query_size=1,
            patches_per_case=1,
            seed=0,
            loop=1,
            label_values=values,
            background=background,
            stride=strides,
            device=device,
        )
        pools = tuple(int(p) for p in strategy.pools(ctx))
        scores = score_case(strategy, probabilities, ctx, owner=owner, case=probs_file.name)
        del probabilities
        spacing = (1, 1, 1)
        if patch_size:
            scores = aggregate_case(scores, ctx)
            spacing = ctx.stride
        elif not isinstance(scores, np.ndarray):  # scored on an accelerator
            scores = scores.cpu().numpy()
        written: list[Path] = []
        write_output(out, lambda: written.extend(write_score_map(out, scores, pools, spacing)))
    except (ValueError, StrategyError) as error:
        raise click.ClickException(str(error)) from None
    for path in written:
        click.echo(f"{path}")
