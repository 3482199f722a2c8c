"""Every ``nnactive`` command in a shell block of README.md, the plugin READMEs and docs/**/*.md parses
against the real command line, and the cheap ones run for real (``--help``, ``--version``,
``plugins``, ``status`` on empty folders, ``data demo`` at a small size). A failure names the page and
line. A block is left out only by ``<!-- docs-test: skip REASON -->`` (see tests/documentation/blocks.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from string import Template

import pytest
from documentation.blocks import ROOT, blocks, documentation_pages
from documentation.shell import Command, CommandLineError, check, commands

pytestmark = pytest.mark.docs

SMALL_DEMO = ("--cases", "4", "--validation-cases", "2", "--size", "16")
RUN_TIMEOUT = 120


def documented_commands() -> list[Command]:
    return [
        command for page in documentation_pages() for block in blocks(page) for command in commands(block)
    ]


def skipped_blocks() -> list[str]:
    return [
        f"{block.where}: {block.skip_reason}"
        for page in documentation_pages()
        for block in blocks(page)
        if block.skip_reason is not None
    ]


DOCUMENTED = documented_commands()


def test_the_docs_have_commands_to_check():
    """Without this, a broken extraction would make every other test here vanish."""
    pages = {command.where.split(":")[0] for command in DOCUMENTED}
    assert {"README.md", "docs/getting-started.md", "docs/tutorial.md"} <= pages
    assert len(DOCUMENTED) >= 30


def test_every_skipped_block_is_explained_in_contributing():
    contributing = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    unexplained = [entry for entry in skipped_blocks() if entry.split(":")[0] not in contributing]
    assert not unexplained, f"blocks skipped without an entry in CONTRIBUTING.md: {unexplained}"


@pytest.mark.parametrize("command", DOCUMENTED, ids=lambda command: command.where)
def test_command_parses(command: Command):
    try:
        check(command.arguments)
    except CommandLineError as error:
        pytest.fail(f"{command.where}: `{command}` does not parse: {error}", pytrace=False)


def cheap(command: Command) -> tuple[str, ...] | None:
    """The arguments to run a cheap command with, or None for a command that is not cheap."""
    arguments = command.arguments
    if {"--help", "-h", "--version"} & set(arguments) or arguments[:1] == ("plugins",):
        return arguments
    if arguments == ("status",):
        return arguments
    if arguments[:2] == ("data", "demo"):
        return (*arguments, *SMALL_DEMO)
    return None


CHEAP = [command for command in DOCUMENTED if cheap(command) is not None]


def test_cheap_commands_are_found():
    kinds = {command.arguments[0] for command in CHEAP}
    assert {"plugins", "status", "data"} <= kinds, kinds


@pytest.mark.parametrize("command", CHEAP, ids=lambda command: command.where)
def test_cheap_command_runs(command: Command, tmp_path):
    """In an empty folder, with nnactive's three folders pointed into it: `status` reports nothing,
    `data demo` writes its small dataset there."""
    environment = {**os.environ, **dict(command.environment)}
    for variable in ("nnActive_raw", "nnActive_data", "nnActive_results"):
        environment[variable] = str(tmp_path / variable)
    arguments = [Template(argument).safe_substitute(environment) for argument in cheap(command)]
    result = subprocess.run(
        [sys.executable, "-c", "from nnactive_core.cli.main import main; main()", *arguments],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert result.returncode == 0, (
        f"{command.where}: `{command}` exited {result.returncode}:\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr, f"{command.where}: `{command}`:\n{result.stderr}"
