"""A job whose experiment the scheduler stopped with SIGTERM (``scancel``, pre-emption) records that
in the experiment's state, so that ``nnactive grid status`` shows it failed and ``nnactive grid retry
--failed`` picks it up; the next run of the experiment clears it."""

from __future__ import annotations

import os
import signal

import pytest
from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import (
    ExperimentLayout,
    Roots,
    experiment_folder_name,
    reserve_experiment_id,
)
from nnactive_core.experiment.lock import ExperimentLock
from nnactive_core.experiment.state import State, load_state, save_state
from nnactive_core.launchers.status import experiment_status

from nnactive_launcher_submitit.job import record_termination, stopped_by_sigterm


@pytest.fixture
def roots(tmp_path) -> Roots:
    return Roots.under(tmp_path)


def experiment(roots: Roots, state: State) -> ExperimentLayout:
    """An experiment folder as ``create_experiment`` writes it: config and state."""
    config = ExperimentConfig(
        dataset="Dataset004_Hippocampus", patch_size=[4, 4, 4], query_size=4, query_steps=3, strategy="random"
    )
    folder = experiment_folder_name(reserve_experiment_id(roots, config.dataset), config.name())
    layout = ExperimentLayout(roots=roots, base=config.dataset, folder=folder)
    layout.results.mkdir(parents=True)
    config.save(layout.results)
    save_state(layout.results, state)
    return layout


def test_a_cancelled_experiment_shows_as_failed_with_the_job(roots):
    layout = experiment(roots, State(loop=1, step="train", folds_done=[0]))
    record_termination(layout.name, roots.env(), "4242_1")
    status = experiment_status(layout)
    assert status.state == "failed"
    assert status.detail.startswith("stopped by SIGTERM in job 4242_1 (cancelled or pre-empted)")
    assert status.detail.endswith("otherwise with `nnactive grid retry --failed`")
    state = load_state(layout.results)
    assert (state.loop, state.step, state.folds_done) == (1, "train", (0,))
    assert not (layout.results / "lock.json").exists()
    # the resumed run clears it with its next finished step
    assert load_state(layout.results).with_fold_done(1).last_error is None


def test_a_finished_experiment_stays_done(roots):
    layout = experiment(roots, State(loop=2, step="done"))
    record_termination(layout.name, roots.env(), "4242_1")
    assert experiment_status(layout).state == "done"


def test_an_experiment_another_process_runs_is_left_alone(roots):
    layout = experiment(roots, State(loop=0, step="query"))
    before = (layout.results / "state.json").read_bytes()
    lock = ExperimentLock(layout.results)
    lock.acquire()
    try:
        pid = os.fork()
        if pid == 0:  # another process: the lock's holder is alive and not this one
            record_termination(layout.name, roots.env(), "4242_1")
            os._exit(0)
        os.waitpid(pid, 0)
    finally:
        lock.release()
    assert (layout.results / "state.json").read_bytes() == before


def test_nothing_to_record_without_the_experiment(roots, tmp_path):
    record_termination("Toy__seed-1", roots.env(), "4242_1")
    record_termination("Toy__seed-1", {}, "4242_1")
    assert not roots.results.exists()


@pytest.mark.parametrize(
    ("returncode", "stopped"),
    [(-signal.SIGTERM, True), (128 + signal.SIGTERM, True), (1, False), (-9, False)],
)
def test_a_run_ended_by_sigterm_is_told_from_other_exits(returncode, stopped):
    # `nnactive run` handles SIGTERM as a resumable stop and exits 143; killed before its handler is
    # installed it dies of the signal
    assert stopped_by_sigterm(returncode) is stopped
