"""What an experiment tracker is, for plugin authors: the events of a run and the two classes a
tracker plugin implements.

A :class:`Tracker` is registered through ``nnactive_register_trackers`` and selected with
``nnactive run --tracker NAME``. When a run of an experiment starts (a fresh one, or a resume),
:meth:`Tracker.start` receives :class:`ExperimentStarted` and returns a :class:`TrackerRun`; that
object receives every later event of the run through the method the event names (``method``), and
:meth:`TrackerRun.close` when the run ends, however it ends. Events are plain frozen data; loops are
numbered from 0 as their files are (``loop_000`` is the starting budget), epochs from 0 as nnU-Net
numbers them.

A tracker that raises is reported by name once and left out for the rest of the run: trackers observe
an experiment and never change or stop it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs

FINISHED = "finished"
FAILED = "failed"
PAUSED = "paused"
OUTCOMES = (FINISHED, FAILED, PAUSED)
"""How a run ends: the experiment is finished, a step failed, or the run stopped before the end
without an error (waiting for annotators, interrupted)."""


@attrs.frozen(kw_only=True)
class ExperimentStarted:
    """A run of the experiment begins (``loop``/``step``: where it starts; loop 0, step ``setup`` or
    ``preprocess`` for a fresh experiment)."""

    experiment: str
    """The experiment's folder name ``DatasetNNN_<name>``, as the command line prints it."""
    results: Path
    config: Mapping[str, Any]
    """The experiment's ``config.json``."""
    versions: Mapping[str, str]
    """Distribution -> version of the core and of every plugin the experiment uses."""
    loops: int
    loop: int
    step: str


@attrs.frozen(kw_only=True)
class EpochFinished:
    method: ClassVar[str] = "epoch_finished"
    loop: int
    fold: int
    epoch: int
    epochs: int
    train_loss: float
    """Mean training loss of the epoch."""


@attrs.frozen(kw_only=True)
class FoldTrained:
    method: ClassVar[str] = "fold_trained"
    loop: int
    fold: int
    seconds: float
    final_loss: float


@attrs.frozen(kw_only=True)
class LoopValidated:
    """The loop's fold ensemble was evaluated on the held-out validation set."""

    method: ClassVar[str] = "loop_validated"
    loop: int
    mean_dice: float
    """nnU-Net's foreground mean Dice; where a class absent from the validation set makes it NaN, the
    mean over the classes whose Dice is defined, as the loop's summary line reports it (NaN when no
    class could be measured)."""
    dice: Mapping[str, float]
    """Foreground label name -> Dice of that class (NaN where undefined)."""
    budget: Mapping[str, float]
    """Cumulative annotation costs up to this loop (``patches``, ``voxels``, ``foreground_voxels``,
    ... as in ``costs.json``)."""
    training_seconds: float
    """Training time of the loop, summed over its folds."""
    summary_file: Path
    warnings: tuple[str, ...] = ()
    """The loop's warnings (``loop_XXX/warnings.json``: classes not learned or absent, Dice falling),
    one message each."""


@attrs.frozen(kw_only=True)
class QueryMade:
    """A query chose the patches of loop ``loop`` and they were annotated (costs are known then)."""

    method: ClassVar[str] = "query_made"
    loop: int
    strategy: str
    patches: int
    costs: Mapping[str, float]
    """Costs of this query's patches."""
    cumulative: Mapping[str, float]
    overview: Path | None
    """A picture of the queried patches (an axial slice through each), or None if it could not be
    drawn."""


@attrs.frozen(kw_only=True)
class ExperimentFinished:
    method: ClassVar[str] = "experiment_finished"
    loops: int
    mean_dice: float
    """Mean Dice of the last loop."""
    budget: Mapping[str, float]


Event = EpochFinished | FoldTrained | LoopValidated | QueryMade | ExperimentFinished


class TrackerRun:
    """One run of one experiment as a tracker records it. Every method does nothing here: override
    the ones you need."""

    def epoch_finished(self, event: EpochFinished) -> None:
        pass

    def fold_trained(self, event: FoldTrained) -> None:
        pass

    def loop_validated(self, event: LoopValidated) -> None:
        pass

    def query_made(self, event: QueryMade) -> None:
        pass

    def experiment_finished(self, event: ExperimentFinished) -> None:
        pass

    def close(self, outcome: str) -> None:
        """The run ends; ``outcome`` is one of :data:`OUTCOMES`."""


class Tracker:
    """Base class of trackers registered through ``nnactive_register_trackers``."""

    name: str = ""
    description: str = ""

    def start(self, event: ExperimentStarted) -> TrackerRun:
        raise NotImplementedError
