"""``nnactive run`` of one experiment: take its lock, check its config, plugins and versions, clean up
what a killed write left, start its trackers, and let the :class:`~nnactive_core.experiment.runner.Runner`
do the remaining steps."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import ExperimentLayout
from nnactive_core.experiment.lock import ExperimentLock
from nnactive_core.experiment.loop_checks import check_loop_files
from nnactive_core.experiment.progress import Reporter
from nnactive_core.experiment.removal import experiment_folders
from nnactive_core.experiment.runner import Runner
from nnactive_core.experiment.setup import check_config, checked_device, open_dataset, plugin_uses
from nnactive_core.experiment.signals import terminate_as_interrupt
from nnactive_core.experiment.state import State, load_state
from nnactive_core.experiment.trackers import QueryPicture, TrackerHub, check_trackers, chosen_trackers
from nnactive_core.experiment.versions import check_versions, used_distributions
from nnactive_core.io import remove_temp_files
from nnactive_core.patches.patch import loop_files
from nnactive_core.tracking import FAILED, FINISHED, PAUSED, ExperimentStarted

if TYPE_CHECKING:
    from nnactive_core.plugins import Registry


def run_experiment(
    layout: ExperimentLayout,
    *,
    registry: Registry | None = None,
    allow_version_change: bool = False,
    display: bool | None = None,
    echo: Callable[[str], None] | None = None,
    trackers: Sequence[str] | None = None,
    query_picture: QueryPicture | None = None,
) -> State:
    """Run (or resume) every remaining step of an experiment; returns the final state. ``trackers``
    names the trackers that observe the run (None: those recorded for the experiment);
    ``query_picture`` draws the query overview they receive."""
    from nnactive_core.plugins import registry as load_registry

    registry = registry or load_registry()
    config = ExperimentConfig.load(layout.results)
    check_config(config, registry)
    names = chosen_trackers(layout, trackers)
    check_trackers(registry, names)
    with ExperimentLock(layout.results), terminate_as_interrupt():
        versions = used_distributions(registry, plugin_uses(config))
        check_versions(layout.results, versions, allow_version_change)
        state = load_state(layout.results)
        existing = len(loop_files(layout.raw)) if layout.raw.is_dir() else 0
        state.check(config.query_steps, existing)
        if state.finished:
            return state
        removed = remove_temp_files(experiment_folders(layout))
        dataset = open_dataset(config, layout.roots, registry)
        check_loop_files(layout.raw, dataset, config)
        device = checked_device(config)
        with Reporter(
            layout.results, layout.folder, config.query_steps, display=display, echo=echo
        ) as reporter:
            reporter.info(f"run: loop {state.loop}, step {state.step}, device {device}, pid {os.getpid()}")
            for path in removed:
                reporter.info(f"removed {path}, left by a write that was killed")
            hub = TrackerHub(layout, names, registry, reporter.say, query_picture)
            hub.start(
                ExperimentStarted(
                    experiment=layout.folder,
                    results=layout.results,
                    config=config.to_json(),
                    versions=versions,
                    loops=config.query_steps,
                    loop=state.loop,
                    step=state.step,
                )
            )
            outcome = FAILED
            try:
                state = Runner(layout, config, dataset, registry, reporter, device, hub).run(state)
                outcome = FINISHED if state.finished else PAUSED
            except KeyboardInterrupt:
                outcome = PAUSED
                raise
            finally:
                hub.close(outcome)
            return state
