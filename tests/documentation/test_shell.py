"""The docs tests' own machinery: finding commands in shell blocks, and refusing what the CLI refuses."""

from __future__ import annotations

import pytest
from documentation.blocks import MarkerError, blocks
from documentation.shell import CommandLineError, check, commands

pytestmark = pytest.mark.docs


def page(tmp_path, text: str):
    path = tmp_path / "page.md"
    path.write_text(text, encoding="utf-8")
    return blocks(path)


def test_commands_are_found_after_operators_continuations_and_assignments(tmp_path):
    (block,) = page(
        tmp_path,
        "text\n\n```bash\n"
        "pip install x && nnactive plugins   # a comment\n"
        "NNACTIVE_STRICT_PLUGINS=1 nnactive plugins --check\n"
        "nnactive run --dataset D \\\n    --loops 2\n"
        "echo nnactive; ls | nnactive status\n"
        "```\n",
    )
    found = commands(block)
    assert [command.arguments for command in found] == [
        ("plugins",),
        ("plugins", "--check"),
        ("run", "--dataset", "D", "--loops", "2"),
        ("status",),
    ]
    assert found[1].environment == (("NNACTIVE_STRICT_PLUGINS", "1"),)
    assert [command.where.rsplit(":", 1)[1] for command in found] == ["4", "5", "6", "8"]


def test_only_shell_blocks_count_and_a_skip_marker_needs_a_reason(tmp_path):
    text = "```text\nnnactive plugins\n```\n\n<!-- docs-test: skip another program's nnactive -->\n"
    text += "```bash\nnnactive train x\n```\n"
    assert [commands(block) for block in page(tmp_path, text)] == [[], []]
    with pytest.raises(MarkerError, match="skip REASON"):
        page(tmp_path, "<!-- docs-test: skip -->\n```bash\nnnactive plugins\n```\n")


def test_file_marker_names_the_file(tmp_path):
    (block,) = page(tmp_path, "<!-- file: pkg/a.py -->\n```python\nx = 1\n```\n")
    assert (block.file, block.language, block.text) == ("pkg/a.py", "python", "x = 1\n")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("run", "--bogus"), "No such option '--bogus'"),
        (("dat", "check", "x"), "no command 'dat'"),
        (("data",), "no subcommand"),
        (("run", "--query-size", "abc"), "'abc' is not a valid integer"),
        (("run", "--loops", "0"), "0 is not in the range"),
        (("plugins", "--bogus"), "No such option '--bogus'"),
        (("data", "check", "a", "b"), "unexpected extra arguments"),
        (("status", "--experiment"), "requires an argument"),
        (("run", "--help", "--bogus"), "No such option '--bogus'"),
        (("run", "--probability-dtype", "float64"), "float64"),
    ],
)
def test_what_the_cli_refuses_is_refused(arguments, message):
    with pytest.raises(CommandLineError, match=message):
        check(arguments)


@pytest.mark.parametrize(
    "arguments",
    [
        ("--version",),
        ("data", "check", "--help"),
        ("data", "check", "/no/such/folder"),
        ("run", "--train-option", "epochs=2", "--train-option", "patch_size=[16,16,16]"),
        ("run", "--no-val-mirroring", "--patch-size", "8,8,8"),
    ],
)
def test_what_the_cli_takes_is_taken(arguments):
    check(arguments)
