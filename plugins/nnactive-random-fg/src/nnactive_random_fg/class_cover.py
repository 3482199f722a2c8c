"""The class-covering phase of the ``*-all-classes`` strategies (the standard starting budget).

Every label, background included, gets ``per_label`` patches centred on one of its voxels, each in a
different case. Background counts as a class on purpose: un-annotated voxels are ``ignore``, so
background is only learnt where it is annotated, and the class-ensuring cross-validation split needs
every label in at least two annotated cases.

Labels are served rarest first (fewest cases not yet used by this phase, re-counted after every label;
ties in the order of the label values, as the established code breaks them by dataset.json order),
and each label prefers cases this phase has not used yet, so the patches spread over many cases; a case
already used is taken only when a label has no unused case with room left (where the established code
raised).

Unlike the established code this phase never exceeds the budget silently: it fails up front, with the
numbers, when ``per_label x #labels`` patches do not fit into the query, and it names each label that
occurs in too few pool cases together with the cases where it occurs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from nnactive_core.strategies.placement import PlacementError, PlacementSession, centred_starts
from nnactive_random_fg.labels import LabelStore
from nnactive_random_fg.record import COVER, Draw

if TYPE_CHECKING:
    from nnactive_core.datasets.api import Dataset

_MAX_CASES_NAMED = 10


def label_name(oracle: Dataset, value: int) -> str:
    names = [name for name, v in getattr(oracle, "labels", {}).items() if int(v) == value]
    return f"{names[0]!r} ({value})" if names else str(value)


def _case_list(cases: Sequence[str]) -> str:
    shown = ", ".join(cases[:_MAX_CASES_NAMED])
    more = len(cases) - _MAX_CASES_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


def _shuffled(cases: Sequence[str], rng: np.random.Generator) -> list[str]:
    return [cases[i] for i in rng.permutation(len(cases))]


def check_budget(labels: Sequence[int], per_label: int, query_size: int, who: str) -> None:
    required = per_label * len(labels)
    if required > query_size:
        raise PlacementError(
            f"{who}: the starting budget must be at least {per_label} x {len(labels)} labels "
            f"(background included) = {required} patches to cover every label in {per_label} cases; "
            f"got {query_size}"
        )


def label_census(session: PlacementSession, store: LabelStore, labels: Sequence[int]) -> dict[int, list[str]]:
    """Per label: the pool cases whose ground truth holds it (every case read once)."""
    where: dict[int, list[str]] = {label: [] for label in labels}
    for case in session.cases:
        for label in store.get(case).present(labels):
            where[label].append(case)
    return where


def cover_labels(
    session: PlacementSession,
    labels: Sequence[int],
    *,
    per_label: int,
    rng: np.random.Generator,
    trials: int,
    who: str,
) -> list[Draw]:
    """Place ``per_label`` patches per label, each centred on a voxel of the label, in distinct cases."""
    check_budget(labels, per_label, session.remaining, who)
    store = LabelStore.of(session)
    where = label_census(session, store, labels)
    rare = [label for label in labels if len(where[label]) < per_label]
    if rare:
        details = "; ".join(
            f"label {label_name(session.oracle, label)} occurs in {len(where[label])} "
            f"({_case_list(where[label]) or 'none'})"
            for label in rare
        )
        raise PlacementError(
            f"{who}: every label must occur in at least {per_label} of the {len(session.cases)} pool cases "
            f"to be covered: {details}"
        )
    used: set[str] = set()
    pending = list(labels)
    draws: list[Draw] = []
    while pending:
        # a stable sort of the labels in their given order, re-counted from scratch every time
        pending = sorted(
            (label for label in labels if label in pending),
            key=lambda label: sum(case not in used for case in where[label]),
        )
        label = pending.pop(0)
        fresh = [case for case in where[label] if case not in used]
        again = [case for case in where[label] if case in used]
        order = _shuffled(fresh, rng) + _shuffled(again, rng)
        placed = 0
        for case in order:
            if placed == per_label:
                break
            draw = _centred(session, store, case, label, rng, trials)
            if draw is not None:
                used.add(case)
                draws.append(draw)
                placed += 1
        if placed < per_label:
            raise session.shortfall(
                who,
                f"only {placed} of {per_label} patches centred on label {label_name(session.oracle, label)} "
                f"found room in the {len(order)} cases where it occurs ({_case_list(order)}) "
                f"after {trials} draws per case",
            )
    return draws


def _centred(
    session: PlacementSession, store: LabelStore, case: str, label: int, rng: np.random.Generator, trials: int
) -> Draw | None:
    labels = store.get(case)
    occupancy = session.occupancy(case)

    def propose(n: int) -> np.ndarray:
        return centred_starts(labels.draw_voxels(label, rng, n), occupancy.shape, occupancy.size)

    patch = session.search(case, propose, trials)
    return None if patch is None else Draw(patch=patch, case=case, mode=COVER, label=label)
