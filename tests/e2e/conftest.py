"""One session-scoped fixture that runs the real experiments (real nnU-Net, tiny data and training) once
for every end-to-end test: an uninterrupted run, and the same experiment killed with SIGKILL at several
points and resumed. Both go through the ``nnactive`` command line in subprocesses."""

from __future__ import annotations

import shutil

import pytest
from e2e.runs import (
    KILL_POINTS,
    SECOND_STRATEGY,
    STOP_RULE,
    STRATEGY,
    E2ERuns,
    Experiment,
    experiment_in,
    nnactive,
    run_arguments,
    temp_files,
)

from nnactive_core.experiment.layout import Roots


@pytest.fixture(scope="session")
def e2e_base(tmp_path_factory):
    """The folder all end-to-end experiments live in; they share its base dataset (``raw``), which
    the first experiment generates and plans."""
    from nnactive_core.plugins import registry

    missing = {"random-label2-all-classes", STRATEGY, SECOND_STRATEGY} - set(registry().names("strategy"))
    if missing:
        pytest.skip(f"strategy plugins not installed: {', '.join(sorted(missing))}")
    base = tmp_path_factory.mktemp("e2e")
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def e2e_runs(e2e_base) -> E2ERuns:
    """The reference experiment and the killed-and-resumed one."""
    base = e2e_base
    raw = base / "raw"
    reference = Roots(raw=raw, data=base / "reference", results=base / "reference")
    resumed = Roots(raw=raw, data=base / "resumed", results=base / "resumed")

    outputs = [nnactive(["run", *run_arguments()], reference)]
    assert outputs[0].returncode == 0, outputs[0].stdout + outputs[0].stderr
    reference_run = experiment_in(reference, outputs)

    killed, left = [], {}
    for point in KILL_POINTS:
        result = nnactive(["run", *run_arguments()], resumed, kill_at=point)
        killed.append(result)
        assert result.returncode == -9, f"not killed at {point}: {result.stdout}{result.stderr}"
        left[point] = temp_files(base / "resumed")
    last = nnactive(["run", "--experiment", reference_run.layout.name], resumed)
    assert last.returncode == 0, last.stdout + last.stderr
    return E2ERuns(reference=reference_run, resumed=experiment_in(resumed, [*killed, last]), temp_files=left)


@pytest.fixture(scope="session")
def e2e_experiment(e2e_runs: E2ERuns) -> Experiment:
    """The uninterrupted experiment: 2 loops of pred_entropy on tiny demo data."""
    return e2e_runs.reference


GRID = ((STRATEGY, 7), (STRATEGY, 8), (SECOND_STRATEGY, 7), (SECOND_STRATEGY, 8))


@pytest.fixture(scope="session")
def e2e_grid(e2e_runs, e2e_base) -> Roots:
    """Two strategies x two seeds in one results folder, for the analysis (after ``e2e_runs``, which
    plans the shared base dataset)."""
    roots = Roots(raw=e2e_base / "raw", data=e2e_base / "grid", results=e2e_base / "grid")
    for strategy, seed in GRID:
        result = nnactive(["run", *run_arguments(strategy=strategy, seed=seed)], roots)
        assert result.returncode == 0, result.stdout + result.stderr
    return roots


@pytest.fixture(scope="session")
def e2e_human(e2e_runs, e2e_base) -> Roots:
    """The reference experiment's settings with ``--annotator human``, not yet run."""
    return Roots(raw=e2e_base / "raw", data=e2e_base / "human", results=e2e_base / "human")


BUDGETS = {
    "foreground_voxels": ["--query-budget", "800", "--starting-query-budget", "600"],
    "annotation_seconds": ["--query-budget", "300"],
}
"""Budget metric -> its options: one budgeted experiment each, pred_entropy as the reference."""


@pytest.fixture(scope="session")
def e2e_budgets(e2e_base) -> dict[str, Experiment]:
    """The reference experiment's settings with a budget in foreground voxels (loop 0 too) and one
    in estimated annotation seconds, each in its own results folder."""
    experiments = {}
    for metric, options in BUDGETS.items():
        roots = Roots(raw=e2e_base / "raw", data=e2e_base / metric, results=e2e_base / metric)
        result = nnactive(["run", *run_arguments(), "--budget-metric", metric, *options], roots)
        assert result.returncode == 0, result.stdout + result.stderr
        experiments[metric] = experiment_in(roots, [result])
    return experiments


@pytest.fixture(scope="session")
def e2e_stopped(e2e_runs, e2e_base) -> Roots:
    """A 3-loop run of the placement strategy ``random`` with ``--stop-when``: it stops after loop 1."""
    roots = Roots(raw=e2e_base / "raw", data=e2e_base / "stopped", results=e2e_base / "stopped")
    arguments = [*run_arguments(strategy="random"), "--loops", "3", "--stop-when", STOP_RULE]
    result = nnactive(["run", *arguments], roots)
    assert result.returncode == 0, result.stdout + result.stderr
    return roots
