import pytest

from nnactive_core.experiment.layout import (
    ExperimentLayout,
    LayoutError,
    Roots,
    experiment_folder_name,
    find_experiment,
    list_experiments,
    reserve_experiment_id,
    result_loops,
)


def test_missing_environment_variables_are_named(tmp_path):
    with pytest.raises(LayoutError, match="nnActive_raw and nnActive_data not set"):
        Roots.from_env({})
    with pytest.raises(LayoutError, match="nnActive_data not set"):
        Roots.from_env({"nnActive_raw": str(tmp_path)})


def test_results_default_to_data(tmp_path):
    roots = Roots.from_env({"nnActive_raw": str(tmp_path / "r"), "nnActive_data": str(tmp_path / "d")})
    assert roots.results == tmp_path / "d"
    roots = Roots.from_env({"nnActive_raw": "r", "nnActive_data": "d", "nnActive_results": str(tmp_path)})
    assert roots.results == tmp_path and roots.raw.is_absolute()


def test_paths_follow_the_architecture(tmp_path):
    roots = Roots.under(tmp_path)
    layout = ExperimentLayout(roots=roots, base="Dataset004_Hippo", folder="Dataset012_Hippo__x")
    assert layout.experiment_id == 12 and layout.name == "Hippo__x"
    assert layout.raw == tmp_path / "data/Dataset004_Hippo/nnUNet_raw/Dataset012_Hippo__x"
    assert layout.preprocessed == tmp_path / "data/Dataset004_Hippo/nnUNet_preprocessed/Dataset012_Hippo__x"
    assert layout.trainings == tmp_path / "data/Dataset004_Hippo/nnUNet_results/Dataset012_Hippo__x"
    assert layout.results == tmp_path / "results/Dataset004_Hippo/nnActive_results/Dataset012_Hippo__x"
    assert layout.loop_results(3).name == "loop_003"
    assert layout.base_raw == tmp_path / "raw/nnUNet_raw/Dataset004_Hippo"
    assert layout.nnunet_env()["nnUNet_raw"] == str(tmp_path / "data/Dataset004_Hippo/nnUNet_raw")
    assert layout.paths_record()["base_raw"] == str(layout.base_raw)
    assert layout.labels == layout.raw / "labelsTr"
    assert (
        roots.base_preprocessed("Dataset004_Hippo") == tmp_path / "raw/nnUNet_preprocessed/Dataset004_Hippo"
    )
    assert roots.analysis("Dataset004_Hippo") == tmp_path / "results/Dataset004_Hippo/analysis"


def test_the_layout_names_every_results_file(tmp_path):
    layout = ExperimentLayout(roots=Roots.under(tmp_path), base="Dataset004_H", folder="Dataset012_H__x")
    named = {
        layout.config_file: "config.json",
        layout.state_file: "state.json",
        layout.paths_file: "paths.json",
        layout.versions_file: "versions.json",
        layout.lock_file: "lock.json",
        layout.log_file: "log.txt",
        layout.annotated_classes_file: "annotated_classes.json",
        layout.annotations(2): "annotations/loop_002",
        layout.summary_file(1): "loop_001/summary.json",
        layout.costs_file(1): "loop_001/costs.json",
        layout.query_file(1): "loop_001/query.json",
        layout.timings_file(1): "loop_001/timings.json",
    }
    assert {path: str(path.relative_to(layout.results)) for path in named} == named
    assert layout.validation_predictions(1) == layout.trainings / "loop_001__predVal"
    models = layout.trainings / "nnActiveTrainer__nnUNetPlans__3d_fullres"
    assert layout.archived_models(0, models) == layout.trainings / f"loop_000__{models.name}"


def test_result_loops_are_the_loop_folders_in_order(tmp_path):
    assert result_loops(tmp_path / "absent") == []
    for name in ("loop_010", "loop_002", "loop_x", "loop_003.json"):
        (tmp_path / name).mkdir()
    assert result_loops(tmp_path) == [2, 10]


def test_ids_are_unique_and_follow_existing_folders(tmp_path):
    roots = Roots.under(tmp_path)
    (roots.data / "Dataset004_H" / "nnUNet_raw" / "Dataset007_old").mkdir(parents=True)
    assert reserve_experiment_id(roots, "Dataset004_H") == 8
    assert reserve_experiment_id(roots, "Dataset004_H") == 9
    assert reserve_experiment_id(roots, "Dataset005_Other") == 1
    (roots.results_group("Dataset004_H") / "Dataset1000_big").mkdir(parents=True)
    assert reserve_experiment_id(roots, "Dataset004_H") == 1001
    assert experiment_folder_name(3, "x") == "Dataset003_x"
    assert experiment_folder_name(1001, "x") == "Dataset1001_x"


def test_find_experiment_by_name_or_folder(tmp_path):
    roots = Roots.under(tmp_path)
    for base, folder in (
        ("Dataset004_H", "Dataset001_H__a"),
        ("Dataset004_H", "Dataset002_H__b"),
        ("Dataset005_G", "Dataset001_H__a"),
    ):
        path = roots.results_group(base) / folder
        path.mkdir(parents=True)
        (path / "config.json").write_text("{}")
    (roots.results_group("Dataset004_H") / "Dataset003_unfinished").mkdir()
    assert [e.folder for e in list_experiments(roots)] == [
        "Dataset001_H__a",
        "Dataset002_H__b",
        "Dataset001_H__a",
    ]
    assert find_experiment(roots, "H__b").base == "Dataset004_H"
    assert find_experiment(roots, "Dataset002_H__b").name == "H__b"
    assert find_experiment(roots, "nothing") is None
    with pytest.raises(LayoutError, match="ambiguous"):
        find_experiment(roots, "H__a")
