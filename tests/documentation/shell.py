"""The ``nnactive`` commands of the documentation's shell blocks, and their check against the real
click command line: the (sub)command exists, every option exists and gets its value, every value
converts to the option's type, no argument is missing or left over. Nothing runs here."""

from __future__ import annotations

import copy
import shlex
from collections.abc import Iterator

import attrs
import click
from documentation.blocks import Block

SHELL_LANGUAGES = {"bash", "sh", "shell"}
OPERATORS = {"&&", "||", ";", "|", "&", "(", ")"}


@attrs.frozen(kw_only=True)
class Command:
    where: str
    """page:line of the command's first line."""
    arguments: tuple[str, ...]
    """What follows ``nnactive``."""
    environment: tuple[tuple[str, str], ...] = ()
    """``NAME=value`` assignments in front of the command."""

    def __str__(self) -> str:
        return shlex.join(["nnactive", *self.arguments])


def shell_lines(block: Block) -> Iterator[tuple[int, str]]:
    """(line number, logical line) of a shell block, continuation lines joined."""
    pending, start = "", block.line
    for offset, line in enumerate(block.text.splitlines()):
        if not pending:
            start = block.line + offset
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield start, pending + line
        pending = ""
    if pending:
        yield start, pending


def commands(block: Block) -> list[Command]:
    if block.language not in SHELL_LANGUAGES or block.skip_reason is not None:
        return []
    found = []
    for line_number, line in shell_lines(block):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError as error:
            raise AssertionError(
                f"{block.page.name}:{line_number}: not a shell line ({error}): {line}"
            ) from None
        where = f"{block.where.rsplit(':', 1)[0]}:{line_number}"
        for words in _simple_commands(tokens):
            environment = []
            while words and "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
                environment.append(tuple(words.pop(0).split("=", 1)))
            if words and words[0] == "nnactive":
                found.append(Command(where=where, arguments=tuple(words[1:]), environment=tuple(environment)))
    return found


def _simple_commands(tokens: list[str]) -> Iterator[list[str]]:
    words: list[str] = []
    for token in tokens:
        if token in OPERATORS:
            if words:
                yield words
            words = []
        else:
            words.append(token)
    if words:
        yield words


class CommandLineError(Exception):
    pass


def check(arguments: tuple[str, ...]) -> click.Command:
    """The leaf command ``arguments`` invoke; CommandLineError says what the CLI would refuse."""
    from nnactive_core.cli.main import cli

    command: click.Command = cli
    context: click.Context | None = None
    words = list(arguments)
    path = ["nnactive"]
    while True:
        context = click.Context(command, info_name=path[-1], parent=context)
        try:
            options, rest, _ = command.make_parser(context).parse_args(words)
        except click.UsageError as error:
            raise CommandLineError(f"{' '.join(path)}: {error.format_message()}") from None
        if _asks_for_help_or_version(command, options):
            return command
        if not isinstance(command, click.Group):
            break
        if not rest:
            raise CommandLineError(f"{' '.join(path)}: no subcommand given")
        name, words = rest[0], rest[1:]
        subcommand = command.get_command(context, name)
        if subcommand is None:
            raise CommandLineError(f"{' '.join(path)}: no command {name!r}")
        command = subcommand
        path.append(name)
    if rest and not command.allow_extra_args:
        raise CommandLineError(f"{' '.join(path)}: unexpected extra arguments {rest}")
    for parameter in command.get_params(context):
        if not parameter.expose_value:
            continue
        value = options.get(parameter.name, _MISSING)
        if value is _MISSING or value is _UNSET or value is None:
            if parameter.required:
                raise CommandLineError(f"{' '.join(path)}: missing {parameter.get_error_hint(context)}")
            continue
        try:
            _without_existence_checks(parameter).type_cast_value(context, value)
        except click.BadParameter as error:
            raise CommandLineError(f"{' '.join(path)}: {error.format_message()}") from None
    return command


_MISSING = object()
# click >= 8.3 hands options that were not given to the parser result as its sentinel UNSET.
_UNSET = getattr(click.core, "UNSET", _MISSING)


def _asks_for_help_or_version(command: click.Command, options: dict) -> bool:
    eager = {parameter.name for parameter in command.get_params(click.Context(command)) if parameter.is_eager}
    return any(options.get(name) not in (None, False, _MISSING, _UNSET) for name in eager & set(options))


def _without_existence_checks(parameter: click.Parameter) -> click.Parameter:
    """Paths in the docs are placeholders (``$D``, ``/downloads/Task04_Hippocampus``): they are
    checked for type, not for existence."""
    if isinstance(parameter.type, click.Path) and parameter.type.exists:
        parameter = copy.copy(parameter)
        parameter.type = copy.copy(parameter.type)
        parameter.type.exists = False
    return parameter
