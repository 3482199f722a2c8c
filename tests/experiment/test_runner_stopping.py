"""The stopping signal inside the runner (nnU-Net faked): measured at each query, reusing a score
strategy's pool prediction, costing a placement strategy the stop set only, and ``stop_when``
ending an experiment early with its reason recorded."""

import json

import pytest
from experiment.fake_nnunet_steps import FakeNnunetSteps, loop_file_bytes, small_config

from nnactive_core.experiment.config import ConfigError, ExperimentConfig
from nnactive_core.experiment.layout import Roots
from nnactive_core.experiment.run import run_experiment
from nnactive_core.experiment.setup import setup_experiment
from nnactive_core.experiment.state import DONE, load_state
from nnactive_core.experiment.stopping import experiment_signal
from nnactive_core.patches.patch import loop_files
from nnactive_core.plugins import registry


def run(tmp_path, monkeypatch, name="a", **changes):
    fake = FakeNnunetSteps(root=tmp_path).install(monkeypatch)
    roots = Roots(raw=tmp_path / "raw", data=tmp_path / name, results=tmp_path / name)
    layout = setup_experiment(small_config(**changes), roots)
    lines = []
    state = run_experiment(layout, display=False, echo=lines.append)
    return layout, fake, state, lines


def test_a_placement_strategy_predicts_only_the_stop_set_at_each_query(tmp_path, monkeypatch):
    layout, fake, state, lines = run(tmp_path, monkeypatch, stop_set_size=2)
    stop_set = json.loads(layout.stop_set_file.read_text())["cases"]
    assert len(stop_set) == 2
    assert [call for call in fake.calls if call[0] == "predict"] == [("predict", *stop_set)] * 2
    signal = experiment_signal(layout)
    assert [record["loop"] for record in signal] == [0, 1]  # the last loop makes no query
    assert signal[0]["agreement"] is None and signal[0]["stop_set"] == stop_set
    # the fake predicts the same probabilities in every loop: the predictions are perfectly stable
    assert signal[1]["agreement"] == 1.0 and signal[1]["stop"] is None
    assert 0 < signal[0]["disagreement"] < 1 and signal[0]["members"] == 2
    assert layout.stop_set_predictions(0).is_file() and not layout.stability_file(2).exists()
    assert "loop 1: stop-set agreement 1.000 with loop 0" in "\n".join(lines)
    assert state.step == DONE and state.loop == 2 and state.stopped is None
    assert json.loads(layout.timings_file(0).read_text())["stop_set_prediction_seconds"] > 0


def test_a_score_strategy_reuses_its_pool_prediction(tmp_path, monkeypatch):
    if "pred_entropy" not in registry().names("strategy"):
        pytest.skip("nnactive-strategies-bald is not installed")
    layout, fake, _, _ = run(tmp_path, monkeypatch, strategy="pred_entropy")
    assert [call for call in fake.calls if call[0] == "predict"] == [("predict",)] * 2
    assert [record["agreement"] for record in experiment_signal(layout)] == [None, 1.0]
    assert json.loads(layout.timings_file(0).read_text())["stop_set_prediction_seconds"] == 0.0


def test_the_signal_changes_no_loop_file(tmp_path, monkeypatch):
    """Default experiments keep their picks: the loop files with and without a stopping rule that
    never holds are the same bytes (the rule is not in the name, so use two results folders)."""
    plain, _, _, _ = run(tmp_path, monkeypatch, name="a")
    ruled, _, _, _ = run(tmp_path, monkeypatch, name="b", stop_when="stable:1.0,5")
    assert loop_file_bytes(plain) == loop_file_bytes(ruled) and len(loop_file_bytes(plain)) == 3


def test_stop_when_ends_the_experiment_early_and_records_why(tmp_path, monkeypatch):
    layout, fake, state, lines = run(tmp_path, monkeypatch, query_steps=4, stop_when="stable:0.9,1")
    assert state.step == DONE and state.loop == 1
    expected = "stable:0.9,1: stop-set agreement with the previous loop >= 0.9 for 1 loop up to loop 1"
    assert state.stopped == expected
    assert load_state(layout.results).stopped == state.stopped
    assert [index for index, _ in loop_files(layout.raw)] == [0, 1]  # loop 1's query was not written
    assert not layout.query_file(1).exists()
    assert [call[1] for call in fake.calls if call[0] == "train"] == [0, 0, 1, 1]
    assert json.loads(layout.stability_file(1).read_text())["stop"] == state.stopped
    assert f"stopped after loop 1: {state.stopped}" in lines
    again = run_experiment(layout, display=False, echo=lines.append)
    assert again.stopped == state.stopped and again.loop == 1
    assert [call[1] for call in fake.calls if call[0] == "train"] == [0, 0, 1, 1]


def test_an_old_config_without_the_stopping_fields_loads(tmp_path):
    payload = small_config().to_json()
    del payload["stop_when"], payload["stop_set_size"]
    (tmp_path / "config.json").write_text(json.dumps(payload))
    config = ExperimentConfig.load(tmp_path)
    assert config.stop_when is None and config.stop_set_size == 5 and config.stop_rule is None
    assert config.name() == small_config().name()
    assert small_config(stop_when="stable").name() == config.name()


def test_a_bad_stop_when_in_a_config_names_the_field():
    with pytest.raises(ConfigError, match="field 'stop_when': 'stable:2': the threshold must be in"):
        small_config(stop_when="stable:2")
