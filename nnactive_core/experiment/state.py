"""The experiment's state machine, persisted as ``state.json`` after every finished step.

A state names the *next* step to run. Each step is restartable: it rebuilds its outputs from the
finished steps before it and writes them atomically, so a run killed at any moment resumes from the
state on disk without a ``--force``. Steps of loop k::

    (setup, loop 0 only) -> preprocess -> train -> validate -> query -> annotate -> loop k+1
                                                         \\-> done (last loop: no query)

``query`` predicts the pool (score strategies) and writes ``loop_{k+1}.json``; ``annotate`` writes the
partial labels of the cases that changed, the splits and the costs of loop k+1.
"""

from __future__ import annotations

import time
from pathlib import Path

import attrs

from nnactive_core.experiment.layout import STATE_FILE
from nnactive_core.io import JsonFileError, atomic_write_json, read_json

SETUP = "setup"
PREPROCESS = "preprocess"
TRAIN = "train"
VALIDATE = "validate"
QUERY = "query"
ANNOTATE = "annotate"
DONE = "done"
STEPS = (SETUP, PREPROCESS, TRAIN, VALIDATE, QUERY, ANNOTATE, DONE)


class StateError(RuntimeError):
    """A state file that is unreadable or inconsistent with the experiment."""


@attrs.frozen(kw_only=True)
class State:
    loop: int = 0
    step: str = SETUP
    folds_done: tuple[int, ...] = attrs.field(default=(), converter=lambda v: tuple(sorted(set(v))))
    last_error: str | None = None
    updated: float = 0.0
    stopped: str | None = None
    """Why a finished experiment ended before its last loop (``--stop-when``); None otherwise."""

    def __attrs_post_init__(self) -> None:
        if self.step not in STEPS:
            raise StateError(f"unknown step {self.step!r}; steps are {', '.join(STEPS)}")
        if self.loop < 0:
            raise StateError(f"negative loop {self.loop}")
        if self.step == SETUP and self.loop != 0:
            raise StateError(f"step {SETUP!r} belongs to loop 0, not loop {self.loop}")

    @property
    def finished(self) -> bool:
        return self.step == DONE

    def advance(self, query_steps: int) -> State:
        """The state after the current step finished."""
        if self.finished:
            raise StateError("the experiment is finished; there is no next step")
        if self.step == VALIDATE:
            nxt = QUERY if self.loop < query_steps - 1 else DONE
            return State(loop=self.loop, step=nxt)
        if self.step == ANNOTATE:
            return State(loop=self.loop + 1, step=PREPROCESS)
        return State(loop=self.loop, step=STEPS[STEPS.index(self.step) + 1])

    def with_fold_done(self, fold: int) -> State:
        if self.step != TRAIN:
            raise StateError(f"fold {fold} finished outside the training step (step {self.step!r})")
        return attrs.evolve(self, folds_done=(*self.folds_done, fold), last_error=None)

    def stop_early(self, reason: str) -> State:
        """The state of an experiment that ends at this loop's query step, without its query."""
        if self.step != QUERY:
            raise StateError(f"an experiment stops early at a query step, not at step {self.step!r}")
        return State(loop=self.loop, step=DONE, stopped=reason)

    def with_error(self, message: str) -> State:
        return attrs.evolve(self, last_error=message)

    def expected_loop_files(self) -> int:
        """How many ``loop_XXX.json`` exist once this state is reached: loops 0..loop, plus the next
        one after a finished query. None exist before setup finished."""
        if self.step == SETUP:
            return 0
        return self.loop + (2 if self.step == ANNOTATE else 1)

    def check(self, query_steps: int, loop_files: int | None = None) -> None:
        """Invariants against the config and, when given, the number of loop files on disk. A query
        or setup step may leave one more file behind when killed after writing it: it is rewritten
        identically on resume."""
        if self.loop > query_steps - 1:
            raise StateError(f"state is at loop {self.loop}, but the experiment has {query_steps} loops")
        if self.step == QUERY and self.loop >= query_steps - 1:
            raise StateError(f"the last loop ({self.loop}) has no query")
        if loop_files is None:
            return
        expected = self.expected_loop_files()
        tolerated = {expected, expected + 1} if self.step in (SETUP, QUERY) else {expected}
        if loop_files not in tolerated:
            raise StateError(
                f"state is loop {self.loop} step {self.step!r}, which needs {expected} loop file(s), "
                f"but {loop_files} exist"
            )

    def to_json(self) -> dict:
        payload = {
            "loop": self.loop,
            "step": self.step,
            "folds_done": list(self.folds_done),
            "last_error": self.last_error,
            "updated": self.updated,
        }
        if self.stopped is not None:
            payload["stopped"] = self.stopped
        return payload

    @classmethod
    def from_json(cls, payload: dict, source: str = STATE_FILE) -> State:
        try:
            return cls(
                loop=int(payload["loop"]),
                step=str(payload["step"]),
                folds_done=[int(f) for f in payload.get("folds_done", [])],
                last_error=payload.get("last_error"),
                updated=float(payload.get("updated", 0.0)),
                stopped=None if payload.get("stopped") is None else str(payload["stopped"]),
            )
        except (KeyError, TypeError, ValueError, StateError) as error:
            raise StateError(f"{source}: invalid state: {error}") from None


def save_state(folder: Path, state: State) -> State:
    stamped = attrs.evolve(state, updated=time.time())
    atomic_write_json(Path(folder) / STATE_FILE, stamped.to_json())
    return stamped


def load_state(folder: Path) -> State:
    path = Path(folder) / STATE_FILE
    try:
        payload = read_json(path, expect=dict, missing="no state file; run `nnactive setup` first")
    except JsonFileError as error:
        raise StateError(str(error)) from None
    return State.from_json(payload, source=str(path))
