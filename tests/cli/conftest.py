"""Fixtures of the command-line tests that run experiments with the nnU-Net side faked."""

from __future__ import annotations

import pytest
from experiment.fake_nnunet_steps import FakeNnunetSteps

from nnactive_core.datasets.demo import DemoParameters, build_demo_dataset
from nnactive_core.experiment.layout import Roots


@pytest.fixture
def demo_roots(tmp_path, monkeypatch) -> Roots:
    """Roots with a small demo base dataset, exported as the nnActive_* variables."""
    roots = Roots.under(tmp_path)
    build_demo_dataset(roots.base_nnunet.raw, DemoParameters(seed=1, n_cases=6, n_validation=2, size=16))
    for key, value in roots.env().items():
        monkeypatch.setenv(key, value)
    return roots


@pytest.fixture
def fake(tmp_path, monkeypatch):
    return FakeNnunetSteps(root=tmp_path).install(monkeypatch)
