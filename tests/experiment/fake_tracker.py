"""A tracker that records every event it receives (and can raise at a chosen one), registered into a
copy of the real registry, for the tracker tests."""

from __future__ import annotations

from nnactive_core import plugins
from nnactive_core.tracking import ExperimentStarted, Tracker, TrackerRun

TEST_DISTRIBUTION = plugins.Distribution(name="nnactive-test-trackers", version="0.0.1")


class RecordingRun(TrackerRun):
    def __init__(self, events: list, fail_at: str | None) -> None:
        self.events = events
        self.fail_at = fail_at

    def _record(self, method: str, event) -> None:
        if method == self.fail_at:
            raise ValueError(f"cannot log {type(event).__name__}")
        self.events.append(event)

    def epoch_finished(self, event):
        self._record("epoch_finished", event)

    def fold_trained(self, event):
        self._record("fold_trained", event)

    def loop_validated(self, event):
        self._record("loop_validated", event)

    def query_made(self, event):
        self._record("query_made", event)

    def experiment_finished(self, event):
        self._record("experiment_finished", event)

    def close(self, outcome):
        self._record("close", ("close", outcome))


class RecordingTracker(Tracker):
    """Records the events of every run it starts into ``events``; ``fail_at`` names the method (or
    ``start``) that raises instead."""

    def __init__(self, name: str = "recorder", fail_at: str | None = None) -> None:
        self.name = name
        self.description = "Records events (tests)."
        self.fail_at = fail_at
        self.events: list = []

    def start(self, event: ExperimentStarted) -> TrackerRun:
        if self.fail_at == "start":
            raise ConnectionError("tracker service unreachable")
        self.events.append(event)
        return RecordingRun(self.events, self.fail_at)


def registry_with(*trackers: Tracker) -> plugins.Registry:
    """The installed plugins' registry plus ``trackers`` (a fresh copy: the cached one stays clean)."""
    registry = plugins.load_registry()
    for tracker in trackers:
        registry.entries["tracker"][tracker.name] = (tracker, TEST_DISTRIBUTION)
    return registry
