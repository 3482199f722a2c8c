"""Class-ensuring cross-validation splits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnactive_core.nnunet.splits import make_splits, write_splits


def _random_cases(seed: int, n_cases: int, n_labels: int) -> dict[str, set[int]]:
    rng = np.random.default_rng(seed)
    cases = {}
    for i in range(n_cases):
        labels = {0} | {int(v) for v in np.flatnonzero(rng.random(n_labels) < 0.3) + 1}
        cases[f"case_{i:03d}"] = labels
    return cases


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("n_folds", [2, 3, 5])
def test_every_class_with_two_cases_is_in_two_validation_folds(seed, n_folds):
    cases = _random_cases(seed, n_cases=12, n_labels=5)
    splits = make_splits(cases, n_folds=n_folds, seed=seed)
    counts = {}
    for labels in cases.values():
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
    for label, count in counts.items():
        if count >= 2:
            assert splits.validation_folds_with(label, cases) >= 2, (label, splits)
            for fold in splits.folds:
                assert any(label in cases[c] for c in fold["train"]), "every fold trains on every class"
    assert len(splits.folds) == n_folds


@pytest.mark.parametrize("n_cases", [2, 3, 7, 10])
def test_folds_partition_the_cases_without_empty_folds(n_cases):
    cases = _random_cases(1, n_cases=n_cases, n_labels=3)
    splits = make_splits(cases, n_folds=2, seed=4)
    validation = [c for fold in splits.folds for c in fold["val"]]
    assert sorted(validation) == sorted(cases)
    sizes = [len(fold["val"]) for fold in splits.folds]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    for fold in splits.folds:
        assert sorted(fold["train"] + fold["val"]) == sorted(cases)
        assert not set(fold["train"]) & set(fold["val"])


def test_same_seed_same_split_and_seed_matters():
    cases = _random_cases(3, n_cases=15, n_labels=4)
    first = make_splits(cases, n_folds=5, seed=7)
    assert make_splits(cases, n_folds=5, seed=7).folds == first.folds
    others = [make_splits(cases, n_folds=5, seed=s).folds for s in range(8, 14)]
    assert any(other != first.folds for other in others)


def test_rare_classes_warn_and_splitting_continues():
    cases = {"a": {0, 1}, "b": {0, 1}, "c": {0, 2}, "d": {0, 3}, "e": {0, 1, 4}, "f": {0, 4}}
    splits = make_splits(cases, n_folds=2, seed=0)
    assert len(splits.warnings) == 2
    assert "class 2" in splits.warnings[0] and "class 3" in splits.warnings[1]
    for label in (0, 1, 4):
        assert splits.validation_folds_with(label, cases) == 2


def test_a_class_nowhere_annotated_only_warns():
    splits = make_splits({"a": {0}, "b": {0}}, n_folds=2, seed=0, ensure_labels=[0, 5])
    assert splits.warnings == [
        "class 5 is annotated in 0 case(s) (no case); it cannot be in two validation folds"
    ]


def test_too_few_cases_or_folds_raise():
    with pytest.raises(ValueError, match="2 annotated case"):
        make_splits({"a": {0}, "b": {0}}, n_folds=3, seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        make_splits({"a": {0}, "b": {0}}, n_folds=1, seed=0)


def test_written_in_nnunet_format(tmp_path):
    cases = _random_cases(2, n_cases=6, n_labels=2)
    splits = make_splits(cases, n_folds=3, seed=1)
    path = tmp_path / "splits_final.json"
    write_splits(path, splits)
    loaded = json.loads(path.read_text())
    assert loaded == splits.folds
    assert all(set(fold) == {"train", "val"} for fold in loaded)
    assert [p.name for p in tmp_path.iterdir()] == ["splits_final.json"]
