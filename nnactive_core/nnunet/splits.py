"""Class-ensuring cross-validation splits over the annotated cases (``splits_final.json``).

Every class (background included) that is annotated in at least two cases lands in the validation part
of at least two folds, so every fold's training part contains it too. Classes annotated in fewer cases
cannot be ensured; they are reported in :attr:`Splits.warnings` and the split goes on. The remaining
cases are dealt so that fold sizes stay balanced; every draw comes from the given seed.

>>> splits = make_splits({"a": {0, 1}, "b": {0, 1}, "c": {0}, "d": {0, 2}}, n_folds=2, seed=0)
>>> sorted(len(fold["val"]) for fold in splits.folds)
[2, 2]
>>> splits.warnings
['class 2 is annotated in 1 case(s) (d); it cannot be in two validation folds']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs
import numpy as np

from nnactive_core.io import atomic_write_json


@attrs.frozen(kw_only=True)
class Splits:
    """``folds[k] = {"train": [...], "val": [...]}`` (nnU-Net's format) plus what could not be ensured."""

    folds: list[dict[str, list[str]]]
    warnings: list[str] = attrs.field(factory=list)

    def validation_folds_with(self, label: int, case_labels: Mapping[str, Iterable[int]]) -> int:
        """Number of folds whose validation part annotates ``label``."""
        return sum(any(label in set(case_labels[case]) for case in fold["val"]) for fold in self.folds)


def make_splits(
    case_labels: Mapping[str, Iterable[int]],
    *,
    n_folds: int,
    seed: int,
    ensure_labels: Iterable[int] | None = None,
) -> Splits:
    """Split the cases of ``case_labels`` (case id -> label values annotated in it, ``ignore`` excluded)
    into ``n_folds`` folds.

    ``ensure_labels`` defaults to every label annotated somewhere. Raises ``ValueError`` for fewer than two
    folds or fewer cases than folds (a fold would be empty)."""
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    cases = sorted(case_labels)
    if len(cases) < n_folds:
        raise ValueError(
            f"{len(cases)} annotated case(s) cannot fill {n_folds} folds; "
            "annotate more cases or use fewer folds"
        )
    labels = {case: {int(v) for v in case_labels[case]} for case in cases}
    ensure = sorted(
        {v for values in labels.values() for v in values} if ensure_labels is None else set(ensure_labels)
    )
    rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, n_folds]))

    folds: list[list[str]] = [[] for _ in range(n_folds)]
    placed: dict[str, int] = {}
    warnings: list[str] = []
    unensured = _ensure_classes(labels, ensure, folds, placed, warnings, rng)

    remaining = [case for case in cases if case not in placed]
    for index in rng.permutation(len(remaining)):
        fold = _smallest_folds(folds, range(n_folds), 1, rng)[0]
        folds[fold].append(remaining[index])

    if any(len(fold) == 0 for fold in folds):
        raise RuntimeError(f"internal error: an empty fold in the split {folds}")
    result = Splits(
        folds=[
            {
                "train": sorted(c for other, f in enumerate(folds) if other != k for c in f),
                "val": sorted(fold),
            }
            for k, fold in enumerate(folds)
        ],
        warnings=warnings,
    )
    _verify(result, labels, [v for v in ensure if v not in unensured])
    return result


def _ensure_classes(
    labels: dict[str, set[int]],
    ensure: list[int],
    folds: list[list[str]],
    placed: dict[str, int],
    warnings: list[str],
    rng: np.random.Generator,
) -> set[int]:
    """Place cases of the rarest class first, each class into two distinct validation folds. Returns the
    classes that could not be ensured (each with a warning)."""
    unensured: set[int] = set()
    pending = set(ensure)
    while pending:
        candidates = {v: [c for c in labels if v in labels[c] and c not in placed] for v in pending}
        label = min(pending, key=lambda v: (len(candidates[v]), v))
        pending.remove(label)
        total = sum(label in values for values in labels.values())
        if total < 2:
            owners = ", ".join(c for c in labels if label in labels[c]) or "no case"
            warnings.append(
                f"class {label} is annotated in {total} case(s) ({owners}); "
                "it cannot be in two validation folds"
            )
            unensured.add(label)
            continue
        covering = {placed[c] for c in placed if label in labels[c]}
        needed = max(0, 2 - len(covering))
        open_folds = [k for k in range(len(folds)) if k not in covering]
        pool = [candidates[label][i] for i in rng.permutation(len(candidates[label]))]
        if needed > len(pool):
            warnings.append(
                f"class {label} is in {len(covering)} validation fold(s) only: its other cases were placed "
                "together by rarer classes"
            )
            unensured.add(label)
        for fold in _smallest_folds(folds, open_folds, min(needed, len(pool)), rng):
            case = pool.pop()
            folds[fold].append(case)
            placed[case] = fold
    return unensured


def _smallest_folds(
    folds: list[list[str]], allowed: Iterable[int], count: int, rng: np.random.Generator
) -> list[int]:
    """``count`` distinct folds among ``allowed`` with the fewest cases; ties broken at random."""
    allowed = list(allowed)
    tie_break = rng.permutation(len(allowed))
    order = sorted(range(len(allowed)), key=lambda i: (len(folds[allowed[i]]), tie_break[i]))
    return [allowed[i] for i in order[:count]]


def _verify(splits: Splits, labels: dict[str, set[int]], ensured: list[int]) -> None:
    for label in ensured:
        if splits.validation_folds_with(label, labels) < 2:
            raise RuntimeError(f"internal error: class {label} is in fewer than two validation folds")


def write_splits(path: Path, splits: Splits) -> None:
    """Write ``splits_final.json`` atomically."""
    atomic_write_json(Path(path), splits.folds)
