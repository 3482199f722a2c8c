"""Grid status from fabricated experiment folders: every state, read from the experiments' own files."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys

import attrs
from launchers.grid_fixtures import config, create
from rich.console import Console

from nnactive_core.experiment.layout import ExperimentLayout, Roots
from nnactive_core.experiment.lock import ExperimentLock, LockOwner
from nnactive_core.experiment.loop_warnings import ABSENT, LoopWarning, write_warnings
from nnactive_core.experiment.state import State
from nnactive_core.launchers.status import (
    all_status,
    experiment_status,
    grid_status,
    latest_results,
    progress_table,
    select,
    status_records,
    status_table,
    summary,
    warning_lines,
)


def mixed_grid(roots):
    """Seven experiments, one per state (``running`` is locked by the test itself)."""
    grid = [config(seed=seed) for seed in range(1, 8)]
    create(roots, grid[0], State(loop=2, step="done"))
    create(roots, grid[1], State(loop=1, step="train", folds_done=(0, 1)))  # running
    create(roots, grid[2], State(loop=1, step="query", last_error="RuntimeError: CUDA out of memory\n  at x"))
    create(roots, grid[3], State(loop=1, step="validate"))  # stopped
    create(roots, grid[4], State())  # set up, never run
    # grid[5] was never created
    create(roots, config(seed=7, query_steps=5), State(loop=4, step="done"))  # conflicts with grid[6]
    return grid


def test_every_state_of_a_mixed_grid(roots):
    grid = mixed_grid(roots)
    running = create(roots, grid[1])
    with ExperimentLock(running.results):
        statuses = grid_status(roots, grid)
    assert [(s.name, s.state) for s in statuses] == [
        (grid[0].name(), "done"),
        (grid[1].name(), "running"),
        (grid[2].name(), "failed"),
        (grid[3].name(), "stopped"),
        (grid[4].name(), "not started"),
        (grid[5].name(), "not started"),
        (grid[6].name(), "conflict"),
    ]
    assert [(s.loop, s.step) for s in statuses[:5]] == [
        (2, "done"),
        (1, "train"),
        (1, "query"),
        (1, "validate"),
        (0, "setup"),
    ]
    assert [s.progress for s in statuses] == [
        "2 of 0-2",
        "1 of 0-2",
        "1 of 0-2",
        "1 of 0-2",
        "0 of 0-2",
        "-",
        "-",
    ]
    assert statuses[1].detail == f"pid {os.getpid()} on {socket.gethostname()}"
    assert statuses[2].detail == "RuntimeError: CUDA out of memory"
    assert statuses[6].detail.startswith("exists with another query_steps (")
    assert statuses[5].layout is None and statuses[5].config == grid[5]
    assert (
        summary(statuses)
        == "7 experiments: 1 done, 1 running, 1 failed, 1 stopped, 2 not started, 1 conflict"
    )
    assert [s.name for s in select(statuses, ["failed", "stopped"])] == [grid[2].name(), grid[3].name()]


def test_lock_of_a_dead_process_is_not_running(roots):
    experiment = config()
    layout = create(roots, experiment, State(loop=1, step="train"))
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    owner = LockOwner(pid=int(dead.stdout), host=socket.gethostname(), boot_id="", start_time="", since=0.0)
    (layout.results / "lock.json").write_text(json.dumps(attrs.asdict(owner)))
    (status,) = grid_status(roots, [experiment])
    assert status.state == "stopped"


def test_lock_held_on_another_host_counts_as_running(roots):
    experiment = config()
    layout = create(roots, experiment, State(loop=1, step="train"))
    lock = {"pid": 1, "host": "gpu-node-17", "boot_id": "", "start_time": "", "since": 0.0, "command": ""}
    (layout.results / "lock.json").write_text(json.dumps(lock))
    (status,) = grid_status(roots, [experiment])
    assert (status.state, status.detail) == ("running", "pid 1 on gpu-node-17 (another host: not checked)")


def test_unreadable_state_is_a_failure_naming_the_file(roots):
    experiment = config()
    layout = create(roots, experiment, state=None)
    (layout.results / "state.json").write_text("{not json")
    (status,) = grid_status(roots, [experiment])
    assert status.state == "failed"
    assert str(layout.results / "state.json") in status.detail and "not valid JSON" in status.detail


def test_all_experiments_without_a_grid(roots):
    grid = mixed_grid(roots)
    statuses = all_status(roots)
    assert sorted(s.name for s in statuses) == sorted({c.name() for c in grid[:5]} | {config(seed=7).name()})
    assert "conflict" not in {s.state for s in statuses}


def test_table_and_records(roots):
    grid = mixed_grid(roots)
    statuses = grid_status(roots, grid)
    console = Console(record=True, width=250)
    console.print(status_table(statuses))
    text = console.export_text()
    for status in statuses:
        assert status.display_name in text
    assert (
        statuses[2].display_name == statuses[2].layout.folder and statuses[5].display_name == grid[5].name()
    )
    assert "RuntimeError: CUDA out of memory" in text
    records = status_records(statuses)
    assert records[2] == {
        "experiment": statuses[2].layout.folder,
        "name": grid[2].name(),
        "base_dataset": grid[2].dataset,
        "results": str(statuses[2].layout.results),
        "state": "failed",
        "loop": 1,
        "loops": 3,
        "step": "query",
        "budget": None,
        "budget_loop": None,
        "mean_dice": None,
        "undefined_dice": [],
        "dice_loop": None,
        "detail": "RuntimeError: CUDA out of memory",
        "stopping": {
            "loop": None,
            "agreement": None,
            "disagreement": None,
            "held_loops": None,
            "per_loop": [],
            "stopped": None,
        },
        "warnings": [],
    }
    assert records[5]["results"] is None and records[5]["experiment"] == grid[5].name()
    assert json.loads(json.dumps(records)) == records


def test_set_up_but_never_run_is_not_started_until_its_first_step_finished(roots):
    experiment = config()
    layout = create(roots, experiment, State(loop=0, step="preprocess"))
    assert grid_status(roots, [experiment])[0].state == "not started"
    layout.timings_file(0).parent.mkdir(parents=True, exist_ok=True)
    layout.timings_file(0).write_text('{"preprocess_seconds": 1.0}')
    assert grid_status(roots, [experiment])[0].state == "stopped"


def test_latest_results_and_progress_table(tmp_path):
    roots = Roots.under(tmp_path)
    layout = ExperimentLayout(roots=roots, base="Dataset900_Demo", folder="Dataset001_Demo__x")
    for loop, (patches, dice) in enumerate(((10, 0.3), (20, 0.45))):
        folder = layout.loop_results(loop)
        folder.mkdir(parents=True)
        (folder / "costs.json").write_text(json.dumps({"cumulative": {"patches": patches}}))
        (folder / "summary.json").write_text(json.dumps({"foreground_mean": {"Dice": dice}}))
    (layout.loop_results(2)).mkdir()
    (layout.loop_results(2) / "costs.json").write_text(json.dumps({"cumulative": {"patches": 30}}))
    latest = latest_results(layout)
    assert (latest.budget, latest.budget_loop, latest.dice_loop) == ({"patches": 30}, 2, 1)
    assert latest.mean_dice.value == 0.45
    (layout.results / "config.json").write_text(
        json.dumps(
            {
                "dataset": "Dataset900_Demo",
                "patch_size": [4, 4, 4],
                "query_size": 10,
                "query_steps": 3,
                "strategy": "random",
            }
        )
    )
    (layout.results / "state.json").write_text(
        json.dumps({"loop": 2, "step": "train", "last_error": "x failed"})
    )
    out = io.StringIO()
    Console(file=out, width=200).print(progress_table([experiment_status(layout)]))
    text = out.getvalue()
    assert "Dataset001_Demo__x" in text and "2 of 0-2" in text and "train" in text
    assert " 30 " in text and "0.4500" in text
    assert "failed" in text and "x failed" in text
    assert warning_lines([experiment_status(layout)]) == []


def test_progress_table_counts_warnings_and_reports_an_undefined_class(tmp_path):
    roots = Roots.under(tmp_path)
    layout = ExperimentLayout(roots=roots, base="Dataset900_Demo", folder="Dataset001_Demo__x")
    summary = {"foreground_mean": {"Dice": None}, "mean": {"1": {"Dice": 0.6}, "2": {"Dice": None}}}
    layout.loop_results(0).mkdir(parents=True)
    layout.summary_file(0).write_text(json.dumps(summary).replace("null", "NaN"))
    message = "loop 0: lesion in no validation case: their Dice is undefined"
    warning = LoopWarning(loop=0, kind=ABSENT, classes=["lesion"], message=message)
    write_warnings(layout.warnings_file(0), [warning])
    (layout.results / "config.json").write_text(
        json.dumps(
            {
                "dataset": "Dataset900_Demo",
                "patch_size": 4,
                "query_size": 1,
                "query_steps": 2,
                "strategy": "random",
            }
        )
    )
    status = experiment_status(layout)
    out = io.StringIO()
    Console(file=out, width=200).print(progress_table([status]))
    row = next(line for line in out.getvalue().splitlines() if "Demo__x" in line)
    assert "0.6000 (1/2 classes)" in row and "nan" not in row.lower()
    assert row.split("│")[6].strip() == "1", "one warning recorded"
    assert warning_lines([status]) == [f"warning: Dataset001_Demo__x: {message}"]
    (record,) = status_records([status])
    assert record["mean_dice"] == 0.6 and record["undefined_dice"] == ["label 2"]
    assert record["warnings"] == [{"loop": 0, "kind": ABSENT, "classes": ["lesion"], "message": message}]
    layout.warnings_file(0).write_text("{")
    (line,) = warning_lines([status])
    assert line.startswith("warning: Dataset001_Demo__x: ") and "warnings.json: not valid JSON" in line
    (unreadable,) = status_records([status])[0]["warnings"]
    assert unreadable["kind"] == "unreadable_warnings" and unreadable["loop"] is None
