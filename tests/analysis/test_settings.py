from pathlib import Path

from nnactive_core.analysis.collect import ExperimentResults
from nnactive_core.analysis.settings import differing_fields, group_settings


def _experiment(name, **config):
    config = {
        "dataset": "Dataset001_A",
        "patch_size": [4, 4, 4],
        "query_size": 5,
        "query_steps": 3,
        "strategy": "random",
        "seed": 1,
        "starting_budget_size": None,
        **config,
    }
    return ExperimentResults(
        folder=Path(name),
        config=config,
        finished=True,
        raw_folder=None,
        base_raw=None,
        label_names={},
        loops=(),
        problems=(),
    )


def test_seed_strategy_device_and_resolved_defaults_do_not_split():
    settings = group_settings(
        [
            _experiment("e1"),
            _experiment("e2", seed=2, strategy="other", device="cuda:1"),
            _experiment("e3", starting_budget_size=5),
        ]
    )
    assert len(settings) == 1
    assert settings[0].slug == "patch-4_4_4__sbs-5__qs-5__steps-3"
    assert len(settings[0].experiments) == 3


def test_different_settings_are_never_merged_and_hashed_when_names_collide():
    settings = group_settings(
        [
            _experiment("e1"),
            _experiment("e2", free_overlap=0.2),
            _experiment("e3", query_size=10),
            _experiment("e4", dataset="Dataset002_B"),
        ]
    )
    assert len(settings) == 4
    slugs = {s.label for s in settings}
    colliding = [
        s for s in settings if s.base == "Dataset001_A" and s.slug.startswith("patch-4_4_4__sbs-5__qs-5")
    ]
    assert len(colliding) == 2 and all("__h-" in s.slug for s in colliding)
    assert len({s.slug for s in colliding}) == 2
    assert "Dataset001_A/patch-4_4_4__sbs-10__qs-10__steps-3" in slugs
    assert "Dataset002_B/patch-4_4_4__sbs-5__qs-5__steps-3" in slugs
    differing = differing_fields(settings)
    hashed = next(s for s in colliding if s.fields.get("free_overlap") == 0.2)
    assert differing[hashed.label]["free_overlap"] == 0.2


def test_a_config_from_before_warm_start_and_ensemble_is_the_default_setting_and_warm_runs_are_apart():
    settings = group_settings(
        [
            _experiment("old"),
            _experiment("new", warm_start=False, ensemble="folds"),
            _experiment("warm", warm_start=True),
            _experiment("snapshots", ensemble="snapshots"),
        ]
    )
    assert sorted(len(s.experiments) for s in settings) == [1, 1, 2]
    merged = next(s for s in settings if len(s.experiments) == 2)
    assert [e.folder.name for e in merged.experiments] == ["new", "old"]
