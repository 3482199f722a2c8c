"""The trackers of one run: which are used, delivering the run's events to them, and keeping a
tracker that fails from touching the experiment.

``tracking.json`` in the results folder records the trackers an experiment runs with (a resume
without ``--tracker`` uses them again, so a grid job or a requeued run keeps logging) and the
failures of the latest run, which ``nnactive status`` shows as warnings::

    {"trackers": ["wandb"],
     "problems": [{"tracker": "wandb", "loop": 1, "event": "loop_validated", "error": "..."}]}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnactive_core.experiment.layout import ExperimentLayout
from nnactive_core.io import JsonFileError, atomic_write_json, read_json
from nnactive_core.tracking import ExperimentStarted, TrackerRun

if TYPE_CHECKING:
    from nnactive_core.plugins import Registry
    from nnactive_core.tracking import Event

QueryPicture = Callable[[ExperimentLayout, int], Path | None]
"""Draws the overview picture of loop file ``loop`` of an experiment; supplied by the caller (the
pictures belong to the analysis, a layer above the experiment)."""


def recorded(layout: ExperimentLayout) -> dict[str, Any]:
    """``tracking.json`` (empty lists when there is none or it is unreadable)."""
    try:
        payload = read_json(layout.tracking_file, expect=dict)
    except JsonFileError:
        return {"trackers": [], "problems": []}
    trackers = payload.get("trackers")
    problems = payload.get("problems")
    return {
        "trackers": [str(t) for t in trackers] if isinstance(trackers, list) else [],
        "problems": [p for p in problems if isinstance(p, dict)] if isinstance(problems, list) else [],
    }


def chosen_trackers(layout: ExperimentLayout, names: Sequence[str] | None) -> list[str]:
    """``names`` when given (``[]`` for none), else the trackers recorded for the experiment."""
    if names is not None:
        return list(dict.fromkeys(names))
    return recorded(layout)["trackers"]


def check_trackers(registry: Registry, names: Sequence[str]) -> None:
    """Every named tracker is installed (raises the registry's error, which suggests close names)."""
    for name in names:
        registry.get("tracker", name)


class TrackerHub:
    """Delivers events to the runs of the chosen trackers. A tracker that raises is reported once
    through ``say``, recorded in ``tracking.json`` and left out for the rest of the run."""

    def __init__(
        self,
        layout: ExperimentLayout,
        names: Sequence[str],
        registry: Registry | None,
        say: Callable[[str], None],
        query_picture: QueryPicture | None = None,
    ) -> None:
        self.layout = layout
        self.names = list(names)
        self.registry = registry
        self.say = say
        self.query_picture = query_picture
        self.runs: dict[str, TrackerRun] = {}
        self.problems: list[dict[str, Any]] = []
        self.loop: int | None = None

    @property
    def active(self) -> bool:
        return bool(self.runs)

    def start(self, event: ExperimentStarted) -> None:
        self.loop = event.loop
        if self.names or self.layout.tracking_file.exists():
            self._save()
        for name in self.names:
            try:
                run = self.registry.get("tracker", name).start(event)  # type: ignore[union-attr]
                if not isinstance(run, TrackerRun):
                    raise TypeError(f"start() returned {type(run).__name__}, not a TrackerRun")
            except Exception as error:  # a tracker must never stop the run
                self._failed(name, "start", error)
                continue
            self.runs[name] = run

    def emit(self, event: Event) -> None:
        self.loop = getattr(event, "loop", self.loop)
        for name, run in list(self.runs.items()):
            try:
                getattr(run, event.method)(event)
            except Exception as error:  # a tracker must never stop the run
                del self.runs[name]
                self._failed(name, event.method, error)

    def picture(self, loop: int) -> Path | None:
        """The overview of loop file ``loop`` for the trackers (drawn only when one is listening)."""
        if not self.active or self.query_picture is None:
            return None
        try:
            return self.query_picture(self.layout, loop)
        except Exception as error:  # a picture is a nicety: the query itself is done
            self.say(
                f"query picture of loop {loop} not drawn for the trackers: {type(error).__name__}: {error}"
            )
            return None

    def close(self, outcome: str) -> None:
        for name, run in list(self.runs.items()):
            try:
                run.close(outcome)
            except Exception as error:  # a tracker must never stop the run
                self._failed(name, "close", error)
        self.runs.clear()

    def _failed(self, name: str, event: str, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        owner = self._owner(name)
        self.say(f"tracker {name}{owner} failed at {event} ({message}); the run goes on without it")
        self.problems.append({"tracker": name, "loop": self.loop, "event": event, "error": message})
        self._save()

    def _owner(self, name: str) -> str:
        try:
            distribution = self.registry.owner("tracker", name)  # type: ignore[union-attr]
        except LookupError:
            return ""
        return f" ({distribution.name} {distribution.version})"

    def _save(self) -> None:
        atomic_write_json(self.layout.tracking_file, {"trackers": self.names, "problems": self.problems})
