"""The stopping signal: how stable the model's predictions on a fixed stop set of pool cases are from
one loop to the next, and how much the ensemble's members disagree there; and the rule of
``--stop-when stable[:threshold,loops]`` that ends an experiment once the predictions stopped changing.

This is stabilising-predictions stopping (Bloodgood and Vijay-Shanker, "A method for stopping active
learning based on stabilizing predictions and the need for user-adjustable stopping", CoNLL 2009),
carried to segmentation: the agreement between loop k-1's and loop k's ensemble segmentations of the
stop set is their Dice per foreground class, the voxels of all stop cases pooled, averaged over the
classes that either loop predicts; the ensemble disagreement is, per foreground class, 1 - |voxels every
member labels c| / |voxels any member labels c|, averaged likewise (0 with one member).

The stop set is drawn once from the experiment seed and recorded in ``stop_set.json``. The signal is
measured in each query step, with the models that make the query: a score strategy's pool prediction
already contains the stop cases and is reused; a placement strategy (or a stop case the engine did not
load) costs a prediction of those cases only. The last loop has no query, so no signal. Files (one
owner, this module; names in :mod:`~nnactive_core.experiment.layout`): ``stop_set.json`` in the results
folder, ``loop_XXX/stability.json`` (the signal) and ``loop_XXX/stop_set_predictions.npz`` (the ensemble
segmentation of each stop case, uint8 class indices, which the next loop compares against).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import numpy as np

from nnactive_core.io import JsonFileError, atomic_write_bytes, atomic_write_json, read_json

if TYPE_CHECKING:
    from nnactive_core.experiment.layout import ExperimentLayout

STOP_SET_VERSION = 1
DEFAULT_THRESHOLD = 0.95
DEFAULT_LOOPS = 2
SLAB = 16
"""Slices per step when a stop case's member stack is reduced: bounds the float32 copy of a big case."""
_SPEC = re.compile(r"^stable(?::(?P<threshold>[0-9.]+)(?:,(?P<loops>\d+))?)?$")
STOP_WHEN_FORM = "stable[:threshold[,loops]] (e.g. stable, stable:0.95 or stable:0.95,2)"


class StopSpecError(ValueError):
    """A ``--stop-when`` / ``stop_when`` value that does not parse."""


@attrs.frozen(kw_only=True)
class StopRule:
    """Stop once the agreement between consecutive loops was at least ``threshold`` in each of the
    last ``loops`` loops."""

    threshold: float = DEFAULT_THRESHOLD
    loops: int = DEFAULT_LOOPS

    @property
    def spec(self) -> str:
        return f"stable:{self.threshold:g},{self.loops}"

    def reason(self, loop: int) -> str:
        return (
            f"{self.spec}: stop-set agreement with the previous loop >= {self.threshold:g} "
            f"for {self.loops} loop{'s' if self.loops != 1 else ''} up to loop {loop}"
        )


def parse_stop_when(spec: str) -> StopRule:
    """``stable`` or ``stable:0.95`` or ``stable:0.95,2`` -> a :class:`StopRule`."""
    match = _SPEC.match(spec.strip()) if isinstance(spec, str) else None
    if match is None:
        raise StopSpecError(f"{spec!r} is not a stopping rule: expected {STOP_WHEN_FORM}")
    try:
        threshold = float(match["threshold"]) if match["threshold"] else DEFAULT_THRESHOLD
    except ValueError:
        raise StopSpecError(f"{spec!r}: the threshold must be a number in (0, 1]") from None
    if not 0 < threshold <= 1:
        raise StopSpecError(f"{spec!r}: the threshold must be in (0, 1], got {threshold:g}")
    loops = int(match["loops"]) if match["loops"] else DEFAULT_LOOPS
    if loops < 1:
        raise StopSpecError(f"{spec!r}: the number of loops must be at least 1, got {loops}")
    return StopRule(threshold=threshold, loops=loops)


def choose_stop_set(pool: Sequence[str], seed: int, size: int) -> list[str]:
    """``size`` pool cases (all of a smaller pool), drawn from the seed, in pool order."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 0x5709])
    picked = rng.choice(len(pool), size=min(size, len(pool)), replace=False)
    return [pool[index] for index in sorted(int(i) for i in picked)]


def stop_set(path: Path, pool: Sequence[str], seed: int, size: int) -> list[str]:
    """The recorded stop set, or (first query) a new one, recorded in ``path``."""
    if path.is_file():
        payload = read_json(path, expect=dict)
        cases = payload.get("cases")
        if not isinstance(cases, list) or not all(isinstance(case, str) for case in cases):
            raise JsonFileError(path, "'cases' must be a list of case names")
        return cases
    cases = choose_stop_set(pool, seed, size)
    atomic_write_json(path, {"version": STOP_SET_VERSION, "seed": seed, "size": size, "cases": cases})
    return cases


@attrs.define
class CaseReduction:
    """What the signal keeps of one stop case: the ensemble segmentation and, per foreground class,
    the voxels every member and any member label with it."""

    segmentation: np.ndarray
    all_members: np.ndarray
    any_member: np.ndarray


def reduce_case(probabilities: np.ndarray) -> CaseReduction:
    """``probabilities``: members x classes x Z x Y x X (a memory map is read slab by slab)."""
    members, classes = probabilities.shape[:2]
    segmentation = np.empty(probabilities.shape[2:], dtype=np.uint8)
    every, some = np.zeros(classes, dtype=np.int64), np.zeros(classes, dtype=np.int64)
    for start in range(0, probabilities.shape[2], SLAB):
        slab = np.asarray(probabilities[:, :, start : start + SLAB], dtype=np.float32)
        segmentation[start : start + SLAB] = slab.mean(axis=0).argmax(axis=0)
        votes = slab.argmax(axis=1)
        for label in range(1, classes):
            hits = (votes == label).sum(axis=0)
            every[label] += int((hits == members).sum())
            some[label] += int((hits > 0).sum())
    return CaseReduction(segmentation=segmentation, all_members=every, any_member=some)


def class_dice(previous: Sequence[np.ndarray], current: Sequence[np.ndarray], classes: int) -> dict:
    """Per foreground class index: Dice of the two segmentations with all cases pooled, None where
    neither predicts the class."""
    dice = {}
    for label in range(1, classes):
        overlap = sum(
            int(((a == label) & (b == label)).sum()) for a, b in zip(previous, current, strict=True)
        )
        size = sum(
            int((a == label).sum()) + int((b == label).sum()) for a, b in zip(previous, current, strict=True)
        )
        dice[label] = 2 * overlap / size if size else None
    return dice


def _mean(values) -> float | None:
    present = [value for value in values if value is not None]
    return float(np.mean(present)) if present else None


def disagreement(reductions: Sequence[CaseReduction], members: int) -> float | None:
    """Mean over the foreground classes any member predicts of 1 - |all members| / |any member|."""
    if not reductions:
        return None
    every = sum(reduction.all_members for reduction in reductions)
    some = sum(reduction.any_member for reduction in reductions)
    if members <= 1:
        return 0.0
    return _mean(1 - every[label] / some[label] if some[label] else None for label in range(1, len(some)))


def save_predictions(path: Path, segmentations: Mapping[str, np.ndarray]) -> None:
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **dict(segmentations))
    atomic_write_bytes(path, buffer.getvalue())


def load_predictions(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    with np.load(path) as stored:
        return {name: stored[name] for name in stored.files}


def measure(
    loop: int,
    cases: Sequence[str],
    reductions: Mapping[str, CaseReduction],
    classes: int,
    members: int,
    previous: Mapping[str, np.ndarray] | None,
) -> dict:
    """The ``stability.json`` record of one loop."""
    ordered = [reductions[case] for case in cases]
    per_class: dict = {}
    if previous is not None and all(case in previous for case in cases):
        per_class = class_dice(
            [previous[case] for case in cases], [reduction.segmentation for reduction in ordered], classes
        )
    return {
        "loop": loop,
        "stop_set": list(cases),
        "agreement": _mean(per_class.values()),
        "agreement_per_class": {str(label): value for label, value in per_class.items()},
        "disagreement": disagreement(ordered, members),
        "members": members,
    }


def write_stability(path: Path, record: dict) -> None:
    atomic_write_json(path, record)


def read_stability(path: Path) -> dict | None:
    """A loop's signal, None where the loop has none (no query yet, the last loop, an old experiment)."""
    if not path.is_file():
        return None
    return read_json(path, expect=dict)


def held_loops(records: Sequence[dict | None], threshold: float) -> int:
    """How many of the latest loops in a row had an agreement of at least ``threshold``."""
    held = 0
    for record in reversed(records):
        agreement = None if record is None else record.get("agreement")
        if agreement is None or agreement < threshold:
            break
        held += 1
    return held


def stop_reason(rule: StopRule | None, records: Sequence[dict | None], loop: int) -> str | None:
    """Why the experiment stops after loop ``loop``'s query (records of loops 0..loop), or None."""
    if rule is None or held_loops(records, rule.threshold) < rule.loops:
        return None
    return rule.reason(loop)


def would_stop_at(rule: StopRule, records: Sequence[dict | None]) -> int | None:
    """The first loop after which ``rule`` would have stopped an experiment with these records (the
    benchmark and the analysis ask this of runs made without ``--stop-when``)."""
    for loop in range(len(records)):
        if stop_reason(rule, records[: loop + 1], loop) is not None:
            return loop
    return None


class StopSetWatch:
    """Collects the stop cases' reductions as the query's pool prediction passes them."""

    def __init__(self, cases: Sequence[str]) -> None:
        self.cases = list(cases)
        self.reductions: dict[str, CaseReduction] = {}
        self.members = 0
        self.classes = 0

    def see(self, case: str, probabilities: np.ndarray) -> None:
        if case in self.cases and case not in self.reductions:
            self.reductions[case] = reduce_case(probabilities)
            self.members, self.classes = (int(n) for n in probabilities.shape[:2])

    def missing(self) -> list[str]:
        return [case for case in self.cases if case not in self.reductions]


def record_loop(layout: ExperimentLayout, rule: StopRule | None, loop: int, watch: StopSetWatch) -> dict:
    """Measure loop ``loop``'s signal from a complete watch, keep its segmentations for the next loop
    and write ``stability.json`` with the decision (``stop``: the reason, or null)."""
    previous = load_predictions(layout.stop_set_predictions(loop - 1)) if loop > 0 else None
    record = measure(loop, watch.cases, watch.reductions, watch.classes, watch.members, previous)
    save_predictions(
        layout.stop_set_predictions(loop),
        {case: watch.reductions[case].segmentation for case in watch.cases},
    )
    earlier = [read_stability(layout.stability_file(index)) for index in range(loop)]
    record["held_loops"] = held_loops([*earlier, record], rule.threshold if rule else DEFAULT_THRESHOLD)
    record["stop"] = stop_reason(rule, [*earlier, record], loop)
    write_stability(layout.stability_file(loop), record)
    return record


def experiment_signal(layout: ExperimentLayout) -> list[dict]:
    """Every recorded loop signal of an experiment, in loop order (unreadable files are passed over:
    status and the analysis only show them)."""
    from nnactive_core.experiment.layout import result_loops

    found = []
    for loop in result_loops(layout.results):
        try:
            record = read_stability(layout.stability_file(loop))
        except JsonFileError:
            continue
        if record is not None:
            found.append(record)
    return found


def signal_line(record: dict) -> str:
    """``loop 2: stop-set agreement 0.971 with loop 1, ensemble disagreement 0.043``."""
    agreement = record.get("agreement")
    parts = [
        f"stop-set agreement {agreement:.3f} with loop {record['loop'] - 1}"
        if agreement is not None
        else "stop-set agreement not measured yet"
        if record["loop"] == 0
        else "stop-set agreement undefined (no foreground predicted)"
    ]
    if record.get("disagreement") is not None:
        parts.append(f"ensemble disagreement {record['disagreement']:.3f}")
    return f"loop {record['loop']}: {', '.join(parts)}"
