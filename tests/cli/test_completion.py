"""Shell completion completes values, driven through click's completion protocol
(``_NNACTIVE_COMPLETE=bash_complete`` with ``COMP_WORDS``/``COMP_CWORD``, as the bash script sends
them): strategies, starting budgets, launchers and trackers from the registry, experiments from the
results folder, datasets from ``nnUNet_raw``. Completion imports nothing heavy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from launchers.grid_fixtures import config, create

from nnactive_core.cli.main import ALIASES, cli
from nnactive_core.experiment.layout import Roots
from nnactive_core.plugins import registry


def complete(line: str, env: dict[str, str] | None = None) -> list[str]:
    """The values bash would offer for the last word of ``line`` (a trailing space: a new word)."""
    words = line.split(" ")
    result = CliRunner().invoke(
        cli,
        [],
        prog_name="nnactive",
        env={
            "_NNACTIVE_COMPLETE": "bash_complete",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(words) - 1),
            **(env or {}),
        },
    )
    assert result.exit_code == 0, result.output
    return [item.split(",", 1)[1] for item in result.output.splitlines() if item]


def names(kind: str, strategy_kind: str | None = None) -> list[str]:
    entries = registry().entries[kind]
    return [n for n, (o, _) in sorted(entries.items()) if strategy_kind in (None, getattr(o, "kind", None))]


def test_commands_complete_without_the_aliases():
    offered = complete("nnactive ")
    assert "run" in offered and "visualize-queries" in offered
    assert not set(ALIASES) & set(offered)
    assert complete("nnactive st") == ["status"]


@pytest.mark.parametrize(
    "line",
    [
        "nnactive run --strategy ",
        "nnactive setup --strategy ",
        "nnactive demo --strategy ",
        "nnactive grid run --strategy ",
    ],
)
def test_strategies_come_from_the_registry(line):
    assert complete(line) == names("strategy")
    assert complete(line + "ran") == [n for n in names("strategy") if n.startswith("ran")]


def test_query_and_score_offer_score_strategies_and_starting_budgets_placement_ones():
    assert complete("nnactive query --strategy ") == names("strategy", "score")
    assert complete("nnactive score --strategy ") == names("strategy", "score")
    budgets = complete("nnactive run --starting-budget ")
    assert budgets == names("strategy", "placement") and "random" in budgets


def test_launchers_trackers_adapters_and_profiles():
    assert complete("nnactive grid run --launcher ") == names("launcher")
    assert {"local", "commands"} <= set(complete("nnactive grid retry --launcher "))
    assert complete("nnactive run --tracker ") == names("tracker")
    assert complete("nnactive run --dataset-adapter ") == names("dataset adapter")
    assert complete("nnactive run --profile ") == ["default", "tiny", "small"]


@pytest.fixture
def roots(tmp_path) -> Roots:
    roots = Roots.under(tmp_path)
    for name in ("Dataset004_Hippocampus", "Dataset027_ACDC", "Dataset127_Other"):
        (roots.base_nnunet.raw / name).mkdir(parents=True)
    return roots


def test_experiments_come_from_the_results_folder(roots):
    first = create(roots, config(seed=1))
    second = create(roots, config(seed=2))
    env = {**roots.env(), "nnUNet_raw": ""}
    for line in (
        "nnactive run --experiment ",
        "nnactive status -e ",
        "nnactive visualize-queries --experiment ",
    ):
        assert complete(line, env) == [first.folder, second.folder]
    assert complete("nnactive annotate export --experiment Dataset002", env) == [second.folder]
    assert complete("nnactive run --experiment ", {"nnActive_raw": "", "nnActive_data": ""}) == []


def test_datasets_come_from_nnunet_raw(roots, tmp_path):
    env = {**roots.env(), "nnUNet_raw": ""}
    assert complete("nnactive run --dataset ", env) == [
        "Dataset004_Hippocampus",
        "Dataset027_ACDC",
        "Dataset127_Other",
    ]
    assert complete("nnactive run -d Dataset0", env) == ["Dataset004_Hippocampus", "Dataset027_ACDC"]
    assert complete("nnactive run -d 27", env) == ["Dataset027_ACDC"]
    assert complete("nnactive run -d 1", env) == ["Dataset127_Other"]
    assert complete("nnactive grid status --dataset 00", env) == ["Dataset004_Hippocampus"]
    assert complete("nnactive data split ", env) == complete("nnactive data check -d ", env)
    assert complete("nnactive init_create_val_split --dataset_id Dataset1", env) == ["Dataset127_Other"]
    other = tmp_path / "nnUNet_raw"
    (other / "Dataset042_Mine").mkdir(parents=True)
    assert complete("nnactive data plan Dataset0", {**env, "nnUNet_raw": str(other)}) == [
        "Dataset004_Hippocampus",
        "Dataset027_ACDC",
        "Dataset042_Mine",
    ]


COMPLETION_PROBE = """
import atexit, sys
heavy = ("torch", "nnunetv2", "SimpleITK", "matplotlib", "pandas")
atexit.register(lambda: print("HEAVY:" + ",".join(m for m in heavy if m in sys.modules), file=sys.stderr))
from nnactive_core.cli.main import main
sys.argv = ["nnactive"]
main()
"""


@pytest.mark.parametrize(
    "line",
    ["nnactive run --strategy ", "nnactive run --dataset ", "nnactive status --experiment ", "nnactive "],
)
def test_completion_imports_nothing_heavy(roots, line):
    create(roots, config(seed=1))
    env = {
        **os.environ,
        **roots.env(),
        "_NNACTIVE_COMPLETE": "bash_complete",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(line.split(" ")) - 1),
    }
    run = subprocess.run(
        [sys.executable, "-c", COMPLETION_PROBE], capture_output=True, text=True, env=env, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert "HEAVY:\n" in run.stderr, run.stderr
    assert run.stdout.strip(), "completion offered nothing"
