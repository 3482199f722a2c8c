import json

import pytest

from nnactive_core.experiment.config import (
    ConfigError,
    ExperimentConfig,
)

BASE = dict(
    dataset="Dataset004_Hippocampus", patch_size=(20, 20, 20), query_size=40, query_steps=5, strategy="random"
)


def make(**changes) -> ExperimentConfig:
    return ExperimentConfig(**{**BASE, **changes})


def test_derived_values():
    config = make(folds=4)
    assert (config.sbs, config.per_case, config.trained_folds, config.queries) == (40, 40, (0, 1, 2, 3), 4)
    config = make(starting_budget_size=5, patches_per_case=2, train_folds=2)
    assert (config.sbs, config.per_case, config.trained_folds) == (5, 2, (0, 1))


def test_scalars_and_strings_become_triples():
    assert make(patch_size=8).patch_size == (8, 8, 8)
    assert make(patch_size="4_40_40").patch_size == (4, 40, 40)
    assert make(agg_stride=[1, 8, 8]).agg_stride == (1, 8, 8)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dataset", "Hippocampus"),
        ("dataset", "Dataset004_Hippo/../x"),
        ("patch_size", (20, 20)),
        ("patch_size", (20, 0, 20)),
        ("patch_size", "big"),
        ("query_size", 0),
        ("query_size", 2.5),
        ("query_steps", -1),
        ("strategy", "Not A Name"),
        ("starting_budget", ""),
        ("starting_budget_size", 0),
        ("seed", "1"),
        ("agg_stride", 0),
        ("patches_per_case", -3),
        ("patch_overlap", 1.5),
        ("free_overlap", -0.1),
        ("folds", 1),
        ("train_folds", 9),
        ("training_profile", "Tiny Profile"),
        ("training_overrides", {"epochs": object()}),
        ("query_tile_step", 0),
        ("query_mirroring", "yes"),
        ("val_tile_step", 1.5),
        ("val_mirroring", 1),
        ("probability_dtype", "float64"),
        ("device", ""),
        ("dataset_adapter", "Raw!"),
    ],
)
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        make(**{field: value})


def test_json_round_trip_and_unknown_fields(tmp_path):
    config = make(training_overrides={"epochs": 2}, agg_stride=(1, 2, 2), device="cpu")
    path = config.save(tmp_path)
    assert json.loads(path.read_text())["patch_size"] == [20, 20, 20]
    assert ExperimentConfig.load(tmp_path) == config
    payload = json.loads(path.read_text())
    payload["colour"] = "red"
    path.write_text(json.dumps(payload))
    with pytest.raises(ConfigError, match="colour"):
        ExperimentConfig.load(tmp_path)


def test_option_mappings_are_read_only_copies(tmp_path):
    options = {"n_cases": 6}
    config = make(dataset_options=options, training_overrides={"epochs": 2})
    options["n_cases"] = 7
    assert config.dataset_options == {"n_cases": 6}
    with pytest.raises(TypeError):
        config.training_overrides["epochs"] = 3
    assert json.loads(config.save(tmp_path).read_text())["training_overrides"] == {"epochs": 2}


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="no experiment config"):
        ExperimentConfig.load(tmp_path)
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(ConfigError, match="config.json: not valid JSON"):
        ExperimentConfig.load(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**BASE, "patch_size": [1, 2], "query_steps": 3}))
    with pytest.raises(ConfigError, match="config.json.*'patch_size'"):
        ExperimentConfig.load(tmp_path)


def test_missing_required_field_is_reported(tmp_path):
    payload = dict(BASE)
    del payload["strategy"]
    with pytest.raises(ConfigError, match="strategy"):
        ExperimentConfig.from_json(payload)


def test_the_default_starting_budget_is_the_established_one_where_its_plugin_is_installed(monkeypatch):
    from nnactive_core import plugins

    installed = plugins.Registry()
    for name in ("random", "random-label2-all-classes"):
        installed.entries["strategy"][name] = (object(), plugins.Distribution(name="x", version="1"))
    monkeypatch.setattr(plugins, "registry", lambda: installed)
    assert make().starting_budget == "random-label2-all-classes"
    del installed.entries["strategy"]["random-label2-all-classes"]
    core_only = make()
    assert core_only.starting_budget == "random" and "__sb-random__" in core_only.name()
    # stored, so a config read back never depends on what is installed when it is read
    installed.entries["strategy"]["random-label2-all-classes"] = (
        object(),
        plugins.Distribution(name="x", version="1"),
    )
    assert ExperimentConfig.from_json(core_only.to_json()).starting_budget == "random"


@pytest.mark.parametrize(
    ("profile", "overrides", "val", "query"),
    [
        ("default", {}, True, False),
        ("tiny", {}, False, False),
        ("tiny", {"mirroring": True}, False, False),  # tiny's own defaults stay off
        ("default", {"mirroring": False}, False, False),  # no mirror axes, no test-time mirroring
        ("default", {"query_mirroring": True}, True, True),
        ("nonexistent", {}, True, False),  # the setup check names the unknown profile
    ],
)
def test_mirroring_defaults_follow_the_training_profile(profile, overrides, val, query):
    config = make(training_profile=profile, training_overrides=overrides)
    assert (config.val_mirroring, config.query_mirroring) == (val, query)
    assert make(training_profile=profile, val_mirroring=not val).val_mirroring is (not val)


def test_a_tiny_profile_needs_no_mirroring_flags_but_refuses_a_contradiction():
    from nnactive_core.experiment.setup import SetupError, check_config
    from nnactive_core.plugins import registry

    config = make(training_profile="tiny", starting_budget="random")
    check_config(config, registry())
    with pytest.raises(
        SetupError, match="'val_mirroring': the training profile 'tiny' trains without mirroring"
    ):
        check_config(make(training_profile="tiny", starting_budget="random", val_mirroring=True), registry())


def test_default_budget_keeps_the_established_name_and_an_old_config_loads(tmp_path):
    old = {**BASE, "patch_size": [20, 20, 20], "starting_budget": "random"}
    (tmp_path / "config.json").write_text(json.dumps(old))
    loaded = ExperimentConfig.load(tmp_path)
    assert (loaded.budget_metric, loaded.query_budget, loaded.starting_query_budget) == (
        "patches",
        None,
        None,
    )
    assert not loaded.budgeted and "__bm-" not in loaded.name()
    assert loaded.name().endswith("__seed-12345")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(budget_metric="foreground_voxels"), "'query_budget': budget_metric 'foreground_voxels' needs"),
        (dict(query_budget=2.5), "'query_budget': a budget in patches must be a whole number"),
        (dict(budget_metric="Bad Name", query_budget=3), "'budget_metric': must be a cost column name"),
        (dict(budget_metric="voxels", query_budget=-1), "'query_budget': must be a positive number"),
    ],
)
def test_invalid_budgets_name_the_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        make(**changes)


def test_snapshots_train_one_fold_by_default_with_the_profiles_members():
    config = make(training_profile="tiny", ensemble="snapshots")
    assert (config.trained_folds, config.snapshots) == ((0,), 3)
    config = make(
        training_profile="tiny", ensemble="snapshots", train_folds=2, training_overrides={"snapshots": 2}
    )
    assert (config.trained_folds, config.snapshots) == ((0, 1), 2)
    assert (make().snapshots, make().warm_epochs) == (1, None)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"ensemble": "dropout"}, "'ensemble': must be one of folds, snapshots, got 'dropout'"),
        ({"warm_start": "yes"}, "'warm_start': must be true or false"),
        (
            {"warm_start": True, "ensemble": "snapshots", "training_overrides": {"warm_epochs": 3}},
            "3 epochs cannot hold 1 warm-up epochs and 3 cycles",
        ),
    ],
)
def test_invalid_warm_start_and_ensemble_settings_name_the_field(changes, problem):
    with pytest.raises(ConfigError, match="experiment config field") as raised:
        make(training_profile="tiny", **changes)
    assert problem in str(raised.value)


def test_a_config_json_written_before_these_options_loads_with_the_established_loop(tmp_path):
    payload = make().to_json()
    del payload["warm_start"], payload["ensemble"]
    (tmp_path / "config.json").write_text(json.dumps(payload))
    config = ExperimentConfig.load(tmp_path)
    assert (config.warm_start, config.ensemble, config.trained_folds) == (False, "folds", (0, 1, 2, 3, 4))
    assert config.name() == make().name()
