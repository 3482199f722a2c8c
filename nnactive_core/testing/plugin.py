"""pytest plugin (entry point ``pytest11``): fixtures for strategy plugin authors and the
parametrisation behind :class:`nnactive_core.testing.contract.StrategyContract`."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnactive_core.testing.synthetic import (
    SyntheticDataset,
    make_label_map,
    make_probabilities,
    make_query_context,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = getattr(metafunc.cls, "strategy_names", None)
    if names is not None and "strategy_name" in metafunc.fixturenames:
        metafunc.parametrize("strategy_name", list(names))


@pytest.fixture(name="make_probabilities")
def make_probabilities_fixture():
    """Factory: ``make_probabilities(members=3, classes=3, shape=(12, 12, 12), seed=0, dtype="float32")``."""
    return make_probabilities


@pytest.fixture(name="make_label_map")
def make_label_map_fixture():
    """Factory: ``make_label_map(shape=(24, 24, 24), classes=3, seed=0, empty=False)``."""
    return make_label_map


@pytest.fixture
def synthetic_dataset() -> SyntheticDataset:
    """Six 24^3 cases with background and two foreground classes: an in-memory oracle."""
    return SyntheticDataset.generate()


@pytest.fixture(name="query_context")
def query_context_fixture():
    """Factory: ``query_context(dataset=None, **overrides)`` -> a small QueryContext."""
    return make_query_context


@pytest.fixture
def experiment_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary root with ``nnActive_raw``, ``nnActive_data`` and ``nnActive_results`` set."""
    from nnactive_core.experiment.layout import Roots

    for variable, folder in Roots.under(tmp_path).env().items():
        Path(folder).mkdir()
        monkeypatch.setenv(variable, folder)
    return tmp_path
