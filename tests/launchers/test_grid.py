"""Grid expansion (TOML and command line) and the jobs a grid becomes."""

from __future__ import annotations

import pytest
from launchers.grid_fixtures import FAKE_RUN_COMMAND, create

from nnactive_core.experiment.config import RUN_DEFAULTS
from nnactive_core.experiment.naming import format_name
from nnactive_core.experiment.state import State, load_state
from nnactive_core.launchers import grid
from nnactive_core.launchers.grid import GridError, expand, parse_grid_toml, spec_from_options
from nnactive_core.launchers.status import grid_status
from nnactive_core.values import parse_value

GRID = """
[grid]
datasets = ["Dataset004_Hippocampus", "Dataset027_ACDC"]
strategies = ["random", "pred_entropy"]
query_sizes = [20, 40]
seeds = [12345, 12346, 12347]

[experiment]
patch_size = [20, 20, 20]
query_steps = 5
starting_budget = "random-label2-all-classes"

[dataset.Dataset027_ACDC]
patch_size = [4, 40, 40]
agg_stride = [1, 8, 8]

[launcher]
name = "local"
parallel = 2
gpus = "0,1"
"""


def test_toml_grid_expands_to_the_cartesian_product_in_order():
    spec = parse_grid_toml(GRID, "grid.toml")
    configs = expand(spec)
    assert len(configs) == 2 * 2 * 2 * 3
    assert [(c.dataset, c.strategy, c.query_size, c.seed) for c in configs[:4]] == [
        ("Dataset004_Hippocampus", "random", 20, 12345),
        ("Dataset004_Hippocampus", "random", 20, 12346),
        ("Dataset004_Hippocampus", "random", 20, 12347),
        ("Dataset004_Hippocampus", "random", 40, 12345),
    ]
    assert all(c.query_steps == 5 and c.starting_budget == "random-label2-all-classes" for c in configs)
    hippocampus = [c for c in configs if c.dataset == "Dataset004_Hippocampus"]
    acdc = [c for c in configs if c.dataset == "Dataset027_ACDC"]
    assert {c.patch_size for c in hippocampus} == {(20, 20, 20)}
    assert {(c.patch_size, c.agg_stride) for c in acdc} == {((4, 40, 40), (1, 8, 8))}
    assert configs[-1].name() == (
        "ACDC__patch-4_40_40__sb-random-label2-all-classes__sbs-40__qs-40__unc-pred_entropy__seed-12347"
    )
    assert len({c.name() for c in configs}) == len(configs)
    assert spec.launcher == "local"
    assert spec.launcher_options == {"parallel": "2", "gpus": "0,1"}


def test_an_axis_may_be_a_single_shared_value_and_seed_defaults():
    spec = parse_grid_toml(
        '[grid]\nstrategies = ["random", "bald"]\n[experiment]\ndataset = "Dataset004_Hippocampus"\n'
        "query_size = 10\npatch_size = 8\nquery_steps = 2\n",
        "g.toml",
    )
    configs = expand(spec)
    assert [(c.strategy, c.query_size, c.seed) for c in configs] == [
        ("random", 10, 12345),
        ("bald", 10, 12345),
    ]


def test_a_grid_without_query_steps_gets_the_default_of_nnactive_run():
    spec = parse_grid_toml(
        '[grid]\nstrategies = ["random"]\n[experiment]\ndataset = "Dataset004_Hippocampus"\n'
        "query_size = 10\npatch_size = 8\n",
        "g.toml",
    )
    assert [c.query_steps for c in expand(spec)] == [RUN_DEFAULTS["query_steps"]]


def test_command_line_replaces_axes_and_overrides_fields():
    from_file = parse_grid_toml(GRID, "grid.toml")
    from_cli = spec_from_options(
        datasets=["Dataset004_Hippocampus"],
        seeds=[7],
        settings=["query_steps=3", "patch_size=10_10_10"],
        launcher="commands",
        launcher_options=["out=cmds.txt"],
    )
    spec = from_file.merged_with(from_cli)
    configs = expand(spec)
    assert [(c.dataset, c.strategy, c.query_size, c.seed) for c in configs] == [
        ("Dataset004_Hippocampus", s, q, 7) for s in ("random", "pred_entropy") for q in (20, 40)
    ]
    assert {(c.query_steps, c.patch_size) for c in configs} == {(3, (10, 10, 10))}
    assert spec.launcher == "commands"
    assert spec.launcher_options == {"parallel": "2", "gpus": "0,1", "out": "cmds.txt"}


def test_tables_of_datasets_the_command_line_dropped_are_ignored_even_where_they_do_not_exist():
    def resolve(name):
        known = {"4": "Dataset004_Hippocampus", "27": "Dataset027_ACDC"}
        if str(name) not in known and name not in known.values():
            raise ValueError(f"no dataset {name}")
        return known.get(str(name), name)

    from_file = parse_grid_toml(GRID.replace("Dataset027_ACDC", "Dataset099_Elsewhere"), "grid.toml")
    keep_acdc = from_file.merged_with(spec_from_options(datasets=["4"]))
    resolved = grid.with_datasets(keep_acdc, resolve)
    assert {c.dataset for c in expand(resolved)} == {"Dataset004_Hippocampus"}
    with pytest.raises(ValueError, match="no dataset Dataset099_Elsewhere"):
        grid.with_datasets(from_file, resolve)
    acdc = parse_grid_toml(GRID, "grid.toml").merged_with(spec_from_options(datasets=["27"]))
    (patch_sizes,) = {c.patch_size for c in expand(grid.with_datasets(acdc, resolve))}
    assert patch_sizes == (4, 40, 40), "the table of a dataset still in the grid applies"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5),
        ("-2", -2),
        ("0.5", 0.5),
        ("1e-3", 0.001),
        ("true", True),
        ("false", False),
        ("[1, 8, 8]", [1, 8, 8]),
        ("{epochs = 2}", {"epochs": 2}),
        ("20_20_20", "20_20_20"),
        ("random-label", "random-label"),
        ("cuda:0", "cuda:0"),
    ],
)
def test_set_values_are_typed(text, value):
    assert parse_value(text) == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[grid\n", "grid.toml: not valid TOML"),
        ("[grids]\n", r"grid.toml: unknown section\(s\) grids; sections: grid, experiment"),
        ("[grid]\nstrategy = ['random']\n", r"grid.toml: \[grid\] has unknown key\(s\) strategy"),
        ("grid = 3\n", r"grid.toml: grid must be a table \(\[grid\]\), got 3"),
        ("[grid]\nseeds = []\n", r"grid.toml: \[grid\] seeds must be a non-empty list"),
        ("[grid]\nseeds = [1, 1]\n", r"grid.toml: \[grid\] seeds lists a value twice"),
        (
            "[experiment]\nquery_stepz = 3\n",
            r"grid.toml: \[experiment\] has unknown experiment config field\(s\) "
            "query_stepz",
        ),
        ("[dataset.Dataset004_Hippocampus]\nbogus = 1\n", r"\[dataset.Dataset004_Hippocampus\] has unknown"),
    ],
)
def test_bad_grid_files_name_file_and_field(text, message):
    with pytest.raises(GridError, match=message):
        parse_grid_toml(text, "grid.toml")


BASE = (
    '[experiment]\npatch_size = 4\nquery_steps = 3\nquery_size = 2\nstrategy = "random"\n'
    'dataset = "Dataset004_Hippocampus"\n'
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            BASE.replace('dataset = "Dataset004_Hippocampus"\n', ""),
            r"g.toml: no datasets: list them under \[grid\]",
        ),
        (
            BASE + "[grid]\nstrategies = ['bald']\n",
            "strategy is given both as the axis strategies and as a shared",
        ),
        (
            BASE.replace("query_steps = 3", "query_steps = 0"),
            r"g.toml \(dataset=Dataset004_Hippocampus, strategy=random, query_size=2\).*"
            "'query_steps': must be a positive integer",
        ),
        (
            BASE + "[dataset.Dataset005_Other]\nquery_steps = 2\n",
            r"\[dataset.Dataset005_Other\] names a dataset that is not in the grid",
        ),
        (
            BASE.replace('dataset = "Dataset004_Hippocampus"\n', "")
            + '[grid]\ndatasets = ["Dataset004_Hippocampus", "Dataset005_Hippocampus"]\n',
            "are the same experiment Hippocampus__patch-4_4_4",
        ),
    ],
)
def test_bad_grids_are_named(text, message):
    with pytest.raises(GridError, match=message):
        expand(parse_grid_toml(text, "g.toml"))


def test_bad_assignment_on_the_command_line():
    with pytest.raises(GridError, match="--set 'query_steps' is not KEY=VALUE"):
        spec_from_options(settings=["query_steps"])
    with pytest.raises(GridError, match=r"command line: \[--set\] has unknown experiment config field"):
        spec_from_options(settings=["nope=1"])


def test_build_jobs_runs_each_experiment_with_its_folders(roots, tmp_path):
    configs = expand(
        spec_from_options(
            datasets=["Dataset004_Hippocampus"],
            strategies=["random"],
            query_sizes=[4],
            seeds=[1, 2],
            settings=["patch_size=4", "query_steps=3"],
        )
    )
    layouts = [create(roots, c) for c in configs]
    jobs = grid.build_jobs(layouts, roots, tmp_path / "logs", run_command=FAKE_RUN_COMMAND)
    assert [job.experiment for job in jobs] == [format_name(c) for c in configs]
    for job, experiment in zip(jobs, configs, strict=True):
        assert job.argv == (*FAKE_RUN_COMMAND, "--experiment", experiment.name())
        assert job.log_file == tmp_path / "logs" / f"{experiment.name()}.log"
        assert job.env == roots.env()


def test_default_run_command_is_this_installations_nnactive():
    command = grid.default_run_command()
    assert command[-1] == "run"
    assert command[0].endswith("nnactive")


DEMO_OPTIONS = "{n_cases = 4, size = 24, n_validation = 2}"


def demo_grid(strategies=("random", "pred_entropy")):
    return expand(
        spec_from_options(
            datasets=["Dataset900_Demo"],
            strategies=list(strategies),
            query_sizes=[2],
            seeds=[1],
            settings=[
                "patch_size=4",
                "query_steps=2",
                "dataset_adapter=demo",
                f"dataset_options={DEMO_OPTIONS}",
            ],
        )
    )


def test_prepare_experiments_with_the_real_setup_functions(roots):
    configs = demo_grid()
    layouts, failures = grid.prepare_experiments(configs, roots)
    assert failures == {}
    assert [layout.name for layout in layouts] == [c.name() for c in configs]
    for layout, experiment in zip(layouts, configs, strict=True):
        assert (layout.results / "config.json").is_file()
        assert load_state(layout.results) == State(updated=load_state(layout.results).updated)
        assert [s.state for s in grid_status(roots, [experiment])] == ["not started"]
    again, _ = grid.prepare_experiments(configs, roots)
    assert again == layouts


def test_prepare_checks_everything_before_creating_anything(roots):
    configs = demo_grid(strategies=("random", "no-such-strategy"))
    with pytest.raises(
        GridError, match=r"1 of 2 experiment\(s\) cannot be set up: strategy 'no-such-strategy'"
    ):
        grid.prepare_experiments(configs, roots)
    assert not roots.results.exists() or not any(roots.results.rglob("config.json"))


def test_missing_base_dataset_is_reported_once(roots):
    configs = expand(
        spec_from_options(
            datasets=["Dataset004_Hippocampus"],
            strategies=["random"],
            query_sizes=[2],
            seeds=[1, 2, 3],
            settings=["patch_size=4", "query_steps=2"],
        )
    )
    with pytest.raises(GridError) as raised:
        grid.prepare_experiments(configs, roots)
    message = str(raised.value)
    assert message.startswith(
        "3 of 3 experiment(s) cannot be set up: base dataset Dataset004_Hippocampus not found"
    )
    assert message.count("not found") == 1 and "and 2 more" in message
