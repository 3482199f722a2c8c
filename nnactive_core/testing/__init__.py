"""Test helpers for plugin authors.

Installed with nnactive-core as a pytest plugin (entry point ``pytest11``), so its fixtures are
available in any test suite: ``make_probabilities``, ``make_label_map``, ``synthetic_dataset``,
``query_context`` and ``experiment_dir``. Strategy plugins check their strategies with
:class:`nnactive_core.testing.contract.StrategyContract`.
"""

from nnactive_core.testing.synthetic import (
    SyntheticDataset,
    make_label_map,
    make_probabilities,
    make_query_context,
)

__all__ = ["SyntheticDataset", "make_label_map", "make_probabilities", "make_query_context"]
