"""Entry point of the ``nnactive-dataset-atlas`` plugin."""

from __future__ import annotations

from nnactive_core import hookimpl


@hookimpl
def nnactive_register_dataset_adapters(register):
    from nnactive_dataset_atlas.adapter import AtlasAdapter

    register(AtlasAdapter())
