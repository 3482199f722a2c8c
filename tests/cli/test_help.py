"""Every option of every command (aliases included) has a help text and shows its default, and a
mistyped command, option, strategy, launcher or tracker gets a "did you mean" suggestion."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from nnactive_core.cli.main import ALIASES, COMMANDS, cli


def commands():
    """(path, command) of every command below ``nnactive``, the subcommands of groups included."""
    found = []
    for name in [*COMMANDS, *ALIASES]:
        command = cli.get_command(None, name)
        if isinstance(command, click.Group):
            found += [((name, sub), command.commands[sub]) for sub in sorted(command.commands)]
        else:
            found.append(((name,), command))
    return found


COMMANDS_BELOW = commands()


@pytest.mark.parametrize(("path", "command"), COMMANDS_BELOW, ids=[" ".join(p) for p, _ in COMMANDS_BELOW])
def test_every_option_has_help_and_shows_its_default(path, command):
    root = click.Context(cli, info_name="nnactive", show_default=True)
    ctx = click.Context(command, parent=root, info_name=path[-1])
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden or "--help" in param.opts:
            continue
        assert param.help, f"nnactive {' '.join(path)} {param.opts[0]} has no help text"
        needs_default = not (param.is_flag or param.required or param.multiple or param.count)
        record = param.get_help_record(ctx)
        if needs_default and param.secondary_opts == []:
            shown = "[default: " in record[1] or "[required, unless" in record[1]
            assert shown, f"nnactive {' '.join(path)} {param.opts[0]}: no default shown"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (["stauts"], "Did you mean 'status'?"),
        (["visualise-queries"], "Did you mean 'visualize-queries'?"),
        (["data", "splitt"], "Did you mean 'split'?"),
        (["run", "--patch-sise", "4"], "(Did you mean one of: '--patch-overlap', '--patch-size'"),
        (["query", "--strategi", "x"], "(Did you mean one of: '--strategy', '--stride'?)"),
        (["grid", "run", "--laucher", "local"], "(Did you mean one of: '--launcher', '--tracker'?)"),
    ],
)
def test_mistyped_commands_and_options_get_suggestions(args, suggestion):
    result = invoke(*args)
    assert result.exit_code == 2 and suggestion in result.output, result.output


def test_mistyped_plugin_names_get_suggestions(tmp_path, monkeypatch):
    for name in ("nnActive_raw", "nnActive_data"):
        monkeypatch.setenv(name, str(tmp_path / name))
    result = invoke("run", "-d", "4", "--strategy", "randon", "--patch-size", "4")
    assert (
        result.exit_code == 1
        and "strategy 'randon' is not recognized; did you mean 'random'?" in result.output
    )
    result = invoke(
        "grid", "run", "-d", "4", "--strategy", "random", "--query-size", "2", "--launcher", "locl"
    )
    assert (
        result.exit_code == 1 and "launcher 'locl' is not recognized; did you mean 'local'?" in result.output
    )
    result = invoke("grid", "run", "-d", "4", "--strategy", "rnadom", "--query-size", "2")
    assert result.exit_code == 1 and "did you mean 'random'?" in result.output
    result = invoke("run", "--experiment", "x", "--tracker", "nope")
    assert result.exit_code == 1 and "tracker 'nope' is not recognized" in result.output
    assert "Traceback" not in result.output
