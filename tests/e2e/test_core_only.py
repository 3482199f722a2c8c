"""nnactive-core alone works with its defaults: the demo dataset through ``nnactive run`` with every
plugin distribution disabled (``nox -s core_only`` runs it in a venv where none is installed). The
default starting budget resolves to the core's ``random``, the ``tiny`` profile implies its
prediction defaults, and nothing of a plugin is recorded or used."""

from __future__ import annotations

import json
from importlib import metadata

import pytest
from e2e.runs import DATA_OPTIONS, TRAINING, experiment_in, nnactive

from nnactive_core.experiment.layout import Roots
from nnactive_core.plugins import DISABLE_ENV

pytestmark = pytest.mark.e2e


def plugin_distributions() -> list[str]:
    names = {entry.dist.name for entry in metadata.entry_points(group="nnactive") if entry.dist is not None}
    return sorted(names - {"nnactive-core"})


def test_the_core_alone_runs_the_demo_dataset_with_its_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, ",".join(plugin_distributions()))
    roots = Roots(raw=tmp_path / "raw", data=tmp_path / "data", results=tmp_path / "data")
    listed = nnactive(["plugins", "--json"], roots)
    assert [d["name"] for d in json.loads(listed.stdout)["distributions"]] == ["nnactive-core"]
    arguments = [
        "--strategy=random",
        "--dataset=Dataset900_Demo",
        "--dataset-adapter=demo",
        "--patch-size=4,8,8",
        "--query-size=10",
        "--loops=2",
        "--folds=2",
        "--profile=tiny",
        *(f"--dataset-option={key}={value}" for key, value in DATA_OPTIONS.items()),
        *(f"--train-option={key}={json.dumps(value)}" for key, value in TRAINING.items()),
    ]
    result = nnactive(["run", *arguments], roots)
    assert result.returncode == 0, result.stdout + result.stderr
    experiment = experiment_in(roots, [result])
    config = experiment.config
    assert (config.strategy, config.starting_budget) == ("random", "random")
    assert (config.val_mirroring, config.query_mirroring) == (False, False)
    assert "__sb-random__" in experiment.layout.folder
    used = json.loads(experiment.layout.versions_file.read_text())["distributions"]
    assert set(used) == {"nnactive-core"}
    log = experiment.layout.log_file.read_text()
    assert "loop 0 done (loops 0-1)" in log and "loop 1 done (loops 0-1)" in log
    status = nnactive(["status", "--json"], roots)
    (record,) = json.loads(status.stdout)
    assert record["state"] == "done" and record["budget"]["patches"] == 20
    assert record["mean_dice"] is not None
