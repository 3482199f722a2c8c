"""The adapter as the core finds it (entry point ``atlas``) and the ``nnactive-atlas`` command, on the
synthetic stand-ins of the source files."""

import pytest
from click.testing import CliRunner

from nnactive_core.datasets.api import Dataset
from nnactive_core.plugins import registry
from nnactive_dataset_atlas import adapter as adapter_module
from nnactive_dataset_atlas import sources as source_module
from nnactive_dataset_atlas.build import OptionError
from nnactive_dataset_atlas.cli import main


@pytest.fixture
def synthetic_wheels(monkeypatch, sources):
    monkeypatch.setattr(adapter_module, "installed_sources", lambda: sources)
    monkeypatch.setattr(source_module, "installed_sources", lambda: sources)


def test_the_registry_finds_a_generating_adapter():
    atlas = registry().get("dataset adapter", "atlas")
    assert atlas.generates_dataset and "Harvard-Oxford" in atlas.description


def test_open_builds_then_reopens_the_dataset(synthetic_wheels, tmp_path):
    atlas = registry().get("dataset adapter", "atlas")
    location = tmp_path / "Dataset952_Brain"
    dataset = atlas.open(location, spacing=2.0, tile=[16, 16, 16])
    assert isinstance(dataset, Dataset) and dataset.root == location
    assert dataset.validation_cases() and len(dataset.pool_cases()) == len(dataset.validation_cases())
    again = atlas.open(location, spacing=2.0, tile=16, validation="full")
    assert again.pool_cases() == dataset.pool_cases()
    with pytest.raises(OptionError, match="option spacing"):
        atlas.open(location, spacing=0)


def test_the_command_builds_and_reports_class_fractions(synthetic_wheels, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["build", "--output", str(tmp_path), "--spacing", "2", "--tile", "16"])
    assert result.exit_code == 0, result.output
    assert "built: " in result.output and "Dataset950_BrainTissue" in result.output
    assert "cortex" in result.output and "class fractions (validation)" in result.output
    again = runner.invoke(main, ["build", "--output", str(tmp_path), "--spacing", "2", "--tile", "16"])
    assert again.exit_code == 0 and "already there" in again.output


def test_the_command_gives_one_line_for_bad_input(synthetic_wheels, tmp_path):
    result = CliRunner().invoke(main, ["build", "--output", str(tmp_path), "--tile", "8"])
    assert result.exit_code != 0
    assert "option tile must be at least 16" in result.output and "Traceback" not in result.output
