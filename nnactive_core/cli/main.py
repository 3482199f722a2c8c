"""Entry point of the ``nnactive`` command. Subcommands live in their own modules and are imported
only when invoked, so ``nnactive --help`` and shell completion never import torch or nnU-Net.

The established nnActive's command names work as hidden aliases (``setup_experiment``,
``run_experiment``, ...; see docs/coming-from-nnactive.md). A mistyped command or option gets a
"did you mean" suggestion.

Shell completion comes from click, values included (strategies, datasets, experiments, ...):
``eval "$(_NNACTIVE_COMPLETE=bash_source nnactive)"`` (bash), ``zsh_source`` for zsh, ``fish_source``
for fish.
"""

from __future__ import annotations

import importlib

import click
from click.exceptions import NoSuchCommand
from click.shell_completion import CompletionItem

from nnactive_core import __version__
from nnactive_core.cli.options import join_triples

COMMANDS = {
    "plugins": ("nnactive_core.cli.plugins_cmd", "plugins", "List installed plugins and what they provide."),
    "demo": ("nnactive_core.cli.demo", "demo", "Run a complete AL experiment on the built-in demo dataset."),
    "setup": ("nnactive_core.cli.experiment", "setup", "Set up an experiment (folders, starting budget)."),
    "run": ("nnactive_core.cli.experiment", "run", "Run (or resume) an active-learning experiment."),
    "status": ("nnactive_core.cli.status", "status", "Show loop, step and budget of experiments."),
    "remove": ("nnactive_core.cli.experiment", "remove", "Remove an experiment's folders and free its id."),
    "data": ("nnactive_core.cli.data", "data", "Prepare and check datasets."),
    "query": ("nnactive_core.cli.query", "query", "Run a strategy on stored ensemble probabilities."),
    "score": (
        "nnactive_core.cli.score",
        "score",
        "Write a strategy's voxel or patch score map for one case.",
    ),
    "analyze": ("nnactive_core.cli.analyze", "analyze", "Tables and plots over experiment results."),
    "visualize-queries": (
        "nnactive_core.cli.analyze",
        "visualize_queries",
        "Pictures of the patches queried in each loop.",
    ),
    "grid": ("nnactive_core.cli.grid", "grid", "Run grids of experiments through a launcher."),
    "annotate": (
        "nnactive_core.cli.annotate",
        "annotate",
        "Export queries to human annotators and import labels.",
    ),
}
ALIASES = {
    "setup_experiment": ("nnactive_core.cli.experiment", "setup"),
    "run_experiment": ("nnactive_core.cli.experiment", "run"),
    "analyze_experiments": ("nnactive_core.cli.aliases", "analyze_experiments"),
    "visualize_queries_images": ("nnactive_core.cli.aliases", "visualize_queries_images"),
    "init_create_val_split": ("nnactive_core.cli.aliases", "init_create_val_split"),
    "init_resample_from_id": ("nnactive_core.cli.aliases", "init_resample_from_id"),
}
"""The established nnActive's command names: not listed by ``--help`` or completion, documented on
the migration page."""


class LazyGroup(click.Group):
    """Imports a command's module only when the command runs; knows the hidden aliases; reads
    ``--patch-size 20 20 20`` as ``--patch-size 20,20,20``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module_name, attribute, _ = COMMANDS[name]
        elif name in ALIASES:
            module_name, attribute = ALIASES[name]
        else:
            return None
        return getattr(importlib.import_module(module_name), attribute)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = click.utils.make_str(args[0])
        if self.get_command(ctx, name) is None and not ctx.resilient_parsing and not name.startswith("-"):
            raise NoSuchCommand(name, possibilities=self.list_commands(ctx), ctx=ctx)
        return super().resolve_command(ctx, args)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, join_triples(args))

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names from the table, without importing any command module."""
        if incomplete.startswith("-"):
            return super().shell_complete(ctx, incomplete)
        return [
            CompletionItem(name, help=COMMANDS[name][2])
            for name in self.list_commands(ctx)
            if name.startswith(incomplete)
        ]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="nnactive")
def cli() -> None:
    """nnactive: active learning for 3D biomedical segmentation with nnU-Net v2.

    Query strategies, cost metrics, dataset adapters, launchers and trackers come from plugins; see
    `nnactive plugins`.
    """


def main() -> None:
    cli()
