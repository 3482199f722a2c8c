"""Values that shell completion offers: strategies, starting budgets, launchers and trackers from the
plugin registry, experiments from the results folder, datasets from ``nnUNet_raw``, training profiles.

Each function is a click ``shell_complete`` callback ``(ctx, param, incomplete) -> [CompletionItem]``.
They run on every <tab>, so they import nothing heavy (no torch, nnU-Net, SimpleITK or pandas) and
never fail: a missing environment variable or an unreadable folder completes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import click
from click.shell_completion import CompletionItem

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def _items(pairs: Iterable[tuple[str, str]], incomplete: str) -> list[CompletionItem]:
    return [
        CompletionItem(value, help=help_text or None)
        for value, help_text in pairs
        if value.startswith(incomplete)
    ]


def registered(kind: str, strategy_kind: str | None = None) -> Completer:
    """Names of the registry's objects of ``kind`` (for strategies, optionally only ``score`` or
    ``placement`` ones), with their descriptions."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        from nnactive_core.plugins import PluginError, registry

        try:
            entries = registry().entries[kind]
        except PluginError:
            return []
        pairs = [
            (name, obj.description.strip().splitlines()[0] if obj.description.strip() else "")
            for name, (obj, _) in sorted(entries.items())
            if strategy_kind is None or getattr(obj, "kind", None) == strategy_kind
        ]
        return _items(pairs, incomplete)

    return complete


def experiments(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Experiment folder names below ``$nnActive_results`` (default ``$nnActive_data``)."""
    from nnactive_core.experiment.layout import LayoutError, Roots, list_experiments

    try:
        layouts = list_experiments(Roots.from_env())
    except (LayoutError, OSError):
        return []
    return _items(((layout.folder, layout.base) for layout in layouts), incomplete)


def raw_roots() -> list[Path]:
    """Where base datasets are looked up by id or name: ``$nnActive_raw/nnUNet_raw`` and nnU-Net's own
    ``$nnUNet_raw``."""
    from nnactive_core.experiment.layout import RAW_ENV
    from nnactive_core.nnunet.environment import NnunetFolders

    roots = []
    if os.environ.get(RAW_ENV):
        roots.append(NnunetFolders.under(os.environ[RAW_ENV]).raw)
    if os.environ.get("nnUNet_raw"):
        roots.append(Path(os.environ["nnUNet_raw"]))
    return list(dict.fromkeys(roots))


def datasets(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """Base dataset folder names in the raw roots; an id (``4``) completes to its folder name."""
    from nnactive_core.datasets.names import dataset_folders, parse_dataset_id

    try:
        names = dataset_folders(raw_roots())
    except OSError:
        return []
    if incomplete.isdigit():
        return [
            CompletionItem(name)
            for name in names
            if any(form.startswith(incomplete) for form in _id_forms(parse_dataset_id(name)))
        ]
    return _items(((name, "") for name in names), incomplete)


def _id_forms(dataset_id: int | None) -> tuple[str, ...]:
    return () if dataset_id is None else (str(dataset_id), f"{dataset_id:03d}")


def profiles(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    from nnactive_core.nnunet.profiles import PROFILES

    return _items(((name, f"{profile.epochs} epochs") for name, profile in PROFILES.items()), incomplete)
