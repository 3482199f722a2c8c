import json

import pytest

from nnactive_core.experiment.state import (
    ANNOTATE,
    DONE,
    PREPROCESS,
    QUERY,
    SETUP,
    TRAIN,
    VALIDATE,
    State,
    StateError,
    load_state,
    save_state,
)


def walk(query_steps: int) -> list[tuple[int, str]]:
    state, seen = State(), []
    while not state.finished:
        seen.append((state.loop, state.step))
        state = state.advance(query_steps)
    return seen


def test_a_three_loop_experiment_walks_every_step_once():
    steps = [PREPROCESS, TRAIN, VALIDATE, QUERY, ANNOTATE]
    expected = (
        [(0, SETUP)]
        + [(0, s) for s in steps]
        + [(1, s) for s in steps]
        + [(2, PREPROCESS), (2, TRAIN), (2, VALIDATE)]
    )
    assert walk(3) == expected


def test_a_single_loop_experiment_never_queries():
    assert [step for _, step in walk(1)] == [SETUP, PREPROCESS, TRAIN, VALIDATE]


def test_done_has_no_next_step():
    with pytest.raises(StateError, match="finished"):
        State(loop=2, step=DONE).advance(3)


def test_folds_are_recorded_during_training_only_and_cleared_by_advancing():
    state = State(loop=1, step=TRAIN).with_fold_done(1).with_fold_done(0).with_fold_done(1)
    assert state.folds_done == (0, 1)
    assert state.advance(3).folds_done == ()
    with pytest.raises(StateError, match="outside the training step"):
        State(loop=1, step=QUERY).with_fold_done(0)


def test_errors_are_kept_until_a_fold_succeeds():
    state = State(loop=0, step=TRAIN).with_error("boom")
    assert state.last_error == "boom"
    assert state.with_fold_done(0).last_error is None


@pytest.mark.parametrize(
    ("state", "files", "ok"),
    [
        (State(), 0, True),
        (State(), 1, True),  # killed after writing loop_000
        (State(step=PREPROCESS), 1, True),
        (State(step=PREPROCESS), 2, False),
        (State(loop=1, step=QUERY), 2, True),
        (State(loop=1, step=QUERY), 3, True),  # killed after writing loop_002
        (State(loop=1, step=ANNOTATE), 3, True),
        (State(loop=1, step=ANNOTATE), 2, False),
        (State(loop=2, step=TRAIN), 2, False),
    ],
)
def test_loop_file_invariant(state, files, ok):
    if ok:
        state.check(5, files)
    else:
        with pytest.raises(StateError, match="loop file"):
            state.check(5, files)


def test_state_beyond_the_configured_loops_is_rejected():
    with pytest.raises(StateError, match="has 3 loops"):
        State(loop=3, step=TRAIN).check(3)
    with pytest.raises(StateError, match="no query"):
        State(loop=2, step=QUERY).check(3)


def test_invalid_states():
    with pytest.raises(StateError, match="unknown step"):
        State(step="dance")
    with pytest.raises(StateError, match="belongs to loop 0"):
        State(loop=2, step=SETUP)


def test_save_and_load(tmp_path):
    saved = save_state(tmp_path, State(loop=1, step=TRAIN, folds_done=(0,)))
    assert saved.updated > 0
    assert load_state(tmp_path) == saved
    assert not list(tmp_path.glob(".*tmp*"))


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(StateError, match="nnactive setup"):
        load_state(tmp_path)
    (tmp_path / "state.json").write_text("[1]")
    with pytest.raises(StateError, match="state.json"):
        load_state(tmp_path)
    (tmp_path / "state.json").write_text(json.dumps({"loop": 0, "step": "nap"}))
    with pytest.raises(StateError, match="state.json: invalid state: unknown step"):
        load_state(tmp_path)
