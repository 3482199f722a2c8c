import pytest

from nnactive_core.experiment.layout import Roots


@pytest.fixture
def roots(tmp_path, monkeypatch) -> Roots:
    """Empty nnactive folders, exported as the ``nnActive_*`` environment variables."""
    roots = Roots.under(tmp_path / "nnactive")
    for key, value in roots.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("COLUMNS", "250")
    return roots
