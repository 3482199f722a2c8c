"""The stopping signal with real nnU-Net: measured from the score strategy's own pool prediction,
reproduced by a run killed mid-query, and ``--stop-when`` ending a placement strategy's run early."""

import json

import numpy as np
import pytest
from e2e.runs import STOP_RULE, experiment_in, nnactive, read_json

from nnactive_core.datasets.nnunet_raw import open_nnunet_raw
from nnactive_core.patches.patch import loop_files

pytestmark = pytest.mark.e2e


def segmentations(path):
    with np.load(path) as stored:
        return {name: stored[name] for name in stored.files}


def pooled_dice(previous, current, classes):
    """The agreement recomputed here: per class Dice over all stop cases, mean over predicted classes."""
    values = []
    for label in range(1, classes):
        a = np.concatenate([(previous[case] == label).ravel() for case in sorted(previous)])
        b = np.concatenate([(current[case] == label).ravel() for case in sorted(current)])
        if a.sum() + b.sum():
            values.append(2 * (a & b).sum() / (a.sum() + b.sum()))
    return float(np.mean(values)) if values else None


def test_the_score_strategy_records_the_signal_of_its_query(e2e_runs):
    layout = e2e_runs.reference.layout
    dataset = open_nnunet_raw(layout.base_raw)
    stop_set = read_json(layout.stop_set_file)["cases"]
    assert len(stop_set) == 5 and set(stop_set) <= set(dataset.pool_cases())
    record = read_json(layout.stability_file(0))
    assert record["stop_set"] == stop_set and record["agreement"] is None and record["members"] == 2
    assert 0 <= record["disagreement"] <= 1 and record["stop"] is None
    predicted = segmentations(layout.stop_set_predictions(0))
    assert sorted(predicted) == sorted(stop_set)
    for case in stop_set:
        assert predicted[case].shape == tuple(dataset.shape(case)) and predicted[case].dtype == np.uint8
    assert int(max(p.max() for p in predicted.values())) <= len(dataset.labels) - 1
    assert not layout.stability_file(1).exists()  # the last loop makes no query


def test_a_run_killed_mid_query_records_the_same_signal(e2e_runs):
    reference, resumed = e2e_runs.reference.layout, e2e_runs.resumed.layout
    assert read_json(resumed.stability_file(0)) == read_json(reference.stability_file(0))
    ours, theirs = (
        segmentations(resumed.stop_set_predictions(0)),
        segmentations(reference.stop_set_predictions(0)),
    )
    assert all(np.array_equal(ours[case], theirs[case]) for case in theirs)


def test_stop_when_ends_the_run_after_loop_1_and_says_why(e2e_stopped):
    experiment = experiment_in(e2e_stopped, [])
    layout = experiment.layout
    state = read_json(layout.state_file)
    assert state["step"] == "done" and state["loop"] == 1 and state["stopped"].startswith(STOP_RULE)
    assert [index for index, _ in loop_files(layout.raw)] == [0, 1]
    assert not layout.summary_file(2).exists() and not layout.query_file(1).exists()
    first, second = read_json(layout.stability_file(0)), read_json(layout.stability_file(1))
    assert first["agreement"] is None and second["stop"] == state["stopped"]
    classes = len(open_nnunet_raw(layout.base_raw).labels)
    expected = pooled_dice(
        segmentations(layout.stop_set_predictions(0)), segmentations(layout.stop_set_predictions(1)), classes
    )
    assert second["agreement"] == pytest.approx(expected)
    again = nnactive(["run", "--experiment", layout.folder], e2e_stopped)
    assert again.returncode == 0 and "stopped early after loop 1" in again.stdout
    status = nnactive(["status", "--json"], e2e_stopped)
    (record,) = json.loads(status.stdout)
    assert record["state"] == "done" and record["stopping"]["stopped"] == state["stopped"]
    assert [entry["loop"] for entry in record["stopping"]["per_loop"]] == [0, 1]
