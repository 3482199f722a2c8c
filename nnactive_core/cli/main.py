"""Entry point of the ``nnactive`` command. Subcommands live in their own modules and are imported
only when invoked, so ``nnactive --help`` never imports torch or nnU-Net.

Shell completion comes from click: ``eval "$(_NNACTIVE_COMPLETE=bash_source nnactive)"`` (bash),
``zsh_source`` for zsh, ``fish_source`` for fish.
"""

from __future__ import annotations

import importlib

import click

from nnactive_core import __version__

COMMANDS = {
    "plugins": ("nnactive_core.cli.plugins_cmd", "plugins", "List installed plugins and what they provide."),
    "demo": (
        "nnactive_core.cli.experiment",
        "demo",
        "Run a complete AL experiment on the built-in demo dataset.",
    ),
    "setup": ("nnactive_core.cli.experiment", "setup", "Set up an experiment (folders, starting budget)."),
    "run": ("nnactive_core.cli.experiment", "run", "Run (or resume) an active-learning experiment."),
    "status": ("nnactive_core.cli.experiment", "status", "Show loop, step and budget of experiments."),
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


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attribute, _ = COMMANDS[name]
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nnactive")
def cli() -> None:
    """nnactive: active learning for 3D biomedical segmentation with nnU-Net v2.

    Query strategies, cost metrics, dataset adapters and launchers come from plugins; see
    `nnactive plugins`.
    """


def main() -> None:
    cli()
