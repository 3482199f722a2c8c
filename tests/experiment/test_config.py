import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnactive_core.experiment.config import (
    ConfigError,
    ExperimentConfig,
    format_name,
    parse_name,
    strip_folder_prefix,
)

BASE = dict(
    dataset="Dataset004_Hippocampus", patch_size=(20, 20, 20), query_size=40, query_steps=5, strategy="random"
)


def make(**changes) -> ExperimentConfig:
    return ExperimentConfig(**{**BASE, **changes})


def test_name_has_the_established_format():
    config = make(starting_budget="random-label2-all-classes")
    assert config.name() == (
        "Hippocampus__patch-20_20_20__sb-random-label2-all-classes__sbs-40__qs-40__unc-random__seed-12345"
    )


def test_name_uses_the_explicit_starting_budget_size():
    assert "__sbs-7__qs-40__" in make(starting_budget_size=7).name()


names = st.from_regex(r"[a-z0-9][a-z0-9_\-]{0,12}", fullmatch=True)


@given(
    short=st.from_regex(r"[A-Za-z][A-Za-z0-9_\-]{0,15}", fullmatch=True),
    patch=st.tuples(*(st.integers(1, 500),) * 3),
    start=names,
    strategy=names,
    sbs=st.integers(1, 10_000),
    qs=st.integers(1, 10_000),
    seed=st.integers(-(2**31), 2**31),
)
def test_name_round_trip(short, patch, start, strategy, sbs, qs, seed):
    config = ExperimentConfig(
        dataset=f"Dataset123_{short}",
        patch_size=patch,
        query_size=qs,
        query_steps=3,
        strategy=strategy,
        starting_budget=start,
        starting_budget_size=sbs,
        seed=seed,
    )
    parsed = parse_name(format_name(config))
    assert parsed.matches(config)
    assert (parsed.dataset, parsed.patch_size, parsed.starting_budget, parsed.strategy) == (
        short,
        patch,
        start,
        strategy,
    )
    assert (parsed.starting_budget_size, parsed.query_size, parsed.seed) == (sbs, qs, seed)


def test_parse_accepts_the_folder_prefix_and_rejects_other_names():
    name = make().name()
    assert parse_name(f"Dataset017_{name}") == parse_name(name)
    assert strip_folder_prefix("Dataset004_Hippocampus") == "Dataset004_Hippocampus"
    with pytest.raises(ValueError, match="not an experiment name"):
        parse_name("Hippocampus__patch-20_20__qs-3")


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


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Hippocampus", "part 2 is missing: expected 'patch-...' (the patch size Z_Y_X)"),
        (
            "Hippocampus__patch-20_20__sb-x",
            "part 2 'patch-20_20': after 'patch-' should come the patch size Z_Y_X",
        ),
        (
            "Hippocampus__patch-20_20_20__sbs-40",
            "part 3 'sbs-40' should be 'sb-...' (the starting budget strategy)",
        ),
        (
            "H__patch-1_2_3__sb-x__sbs-a__qs-4__unc-r__seed-1",
            "part 4 'sbs-a': after 'sbs-' should come the starting budget size, an integer",
        ),
        (
            "H__patch-1_2_3__sb-x__sbs-4__qs-4__unc-r__seed-one",
            "part 7 'seed-one': after 'seed-' should come the seed",
        ),
        ("H__patch-1_2_3__sb-x__sbs-4__qs-4__unc-r__seed-1__more", "unexpected text after the seed: 'more'"),
        ("__patch-1_2_3", "it does not start with the base dataset's name"),
    ],
)
def test_a_name_that_does_not_parse_says_which_part_is_wrong(name, problem):
    with pytest.raises(ValueError, match="is not an experiment name of the form") as raised:
        parse_name(name)
    assert problem in str(raised.value)


def test_a_budgeted_name_states_the_budget_and_round_trips():
    config = make(budget_metric="foreground_voxels", query_budget=5000, starting_query_budget=2500.5)
    name = config.name()
    assert name.endswith("__seed-12345__bm-foreground_voxels-qb5000-sb2500.5")
    parsed = parse_name(name)
    assert (parsed.budget_metric, parsed.query_budget, parsed.starting_query_budget) == (
        "foreground_voxels",
        5000,
        2500.5,
    )
    assert parsed.matches(config) and not parsed.matches(make())
    assert parse_name(make().name()).matches(make()) and not parse_name(make().name()).matches(config)
    patches = make(query_budget=30)
    assert patches.name().endswith("__bm-patches-qb30") and parse_name(patches.name()).matches(patches)
    seconds = make(budget_metric="annotation_seconds", query_budget=600)
    assert parse_name(seconds.name()).budget_fields() == {
        "budget_metric": "annotation_seconds",
        "query_budget": 600,
    }


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


def test_a_wrong_budget_part_is_named():
    with pytest.raises(ValueError, match="part 8 'bm-x-5': after 'bm-' should come the budget metric"):
        parse_name("H__patch-1_2_3__sb-x__sbs-4__qs-4__unc-r__seed-1__bm-x-5")


def test_warm_start_and_snapshots_extend_the_name_and_round_trip():
    default = make(training_profile="tiny")
    assert "__seed-12345" == default.name()[-len("__seed-12345") :]
    warm = make(training_profile="tiny", warm_start=True)
    assert warm.name() == default.name() + "__ws-4"
    both = make(
        training_profile="tiny", training_overrides={"warm_epochs": 6}, warm_start=True, ensemble="snapshots"
    )
    assert both.name() == default.name() + "__ws-6__ens-snapshots"
    snapshots = make(training_profile="tiny", ensemble="snapshots")
    assert snapshots.name() == default.name() + "__ens-snapshots"
    for config in (default, warm, both, snapshots):
        parsed = parse_name(config.name())
        assert parsed.matches(config)
        assert parse_name(f"Dataset004_{config.name()}") == parsed
    assert (parse_name(both.name()).warm_epochs, parse_name(both.name()).ensemble) == (6, "snapshots")
    assert (parse_name(default.name()).warm_epochs, parse_name(default.name()).ensemble) == (None, None)
    assert not parse_name(default.name()).matches(warm)
    assert not parse_name(warm.name()).matches(both)
    assert not parse_name(default.name()).matches(snapshots)


@pytest.mark.parametrize(
    ("suffix", "problem"),
    [
        ("__ws-x", "part 8 'ws-x': after 'ws-' should come the epochs of a warm-started fold, an integer"),
        ("__ens-folds", "part 8 'ens-folds': after 'ens-' should come an ensemble (snapshots)"),
        ("__ens-snapshots__ws-3", "unexpected text after the seed: 'ws-3' (expected nothing, in this order)"),
        (
            "__bogus-1",
            "unexpected text after the seed: 'bogus-1' (expected 'bm-...' or 'ws-...' or 'ens-...'",
        ),
    ],
)
def test_a_wrong_optional_name_part_is_named(suffix, problem):
    with pytest.raises(ValueError, match="is not an experiment name of the form") as raised:
        parse_name("H__patch-1_2_3__sb-x__sbs-4__qs-4__unc-r__seed-1" + suffix)
    assert problem in str(raised.value)


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


def test_a_name_with_a_budget_and_cheaper_loops_round_trips():
    config = ExperimentConfig(
        dataset="Dataset004_Demo",
        strategy="random",
        patch_size=(4, 4, 4),
        query_size=4,
        seed=7,
        query_steps=3,
        budget_metric="foreground_voxels",
        query_budget=800,
        starting_query_budget=600,
        warm_start=True,
        ensemble="snapshots",
    )
    name = format_name(config)
    suffix = f"__seed-7__bm-foreground_voxels-qb800-sb600__ws-{config.warm_epochs}__ens-snapshots"
    assert name.endswith(suffix)
    assert parse_name(name).matches(config)
