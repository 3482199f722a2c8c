"""Experiment names: the established form, the optional parts after the seed, and the parser."""

import pytest
from experiment.test_config import make
from hypothesis import given
from hypothesis import strategies as st

from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.naming import format_name, parse_name, strip_folder_prefix

names = st.from_regex(r"[a-z0-9][a-z0-9_\-]{0,12}", fullmatch=True)


def test_name_has_the_established_format():
    config = make(starting_budget="random-label2-all-classes")
    assert config.name() == (
        "Hippocampus__patch-20_20_20__sb-random-label2-all-classes__sbs-40__qs-40__unc-random__seed-12345"
    )


def test_name_uses_the_explicit_starting_budget_size():
    assert "__sbs-7__qs-40__" in make(starting_budget_size=7).name()


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
