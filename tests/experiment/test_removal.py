"""``remove_experiment``: the experiment's own folders and id go, links are removed and never
followed, the base dataset and the other experiments stay."""

from __future__ import annotations

from launchers.grid_fixtures import config, create

from nnactive_core.experiment.layout import Roots, find_experiment, list_experiments, reserve_experiment_id
from nnactive_core.experiment.removal import existing_parts, remove_experiment


def populate(layout) -> None:
    base_images = layout.base_raw / "imagesTr"
    base_images.mkdir(parents=True, exist_ok=True)
    (base_images / "case_0_0000.nii.gz").write_bytes(b"image")
    layout.raw.mkdir(parents=True)
    (layout.raw / "imagesTr").symlink_to(base_images, target_is_directory=True)
    (layout.raw / "loop_000.json").write_text('{"patches": []}')
    for folder in (layout.preprocessed, layout.trainings / "fold_0"):
        folder.mkdir(parents=True)
        (folder / "file").write_text("x")


def test_removal_takes_only_the_experiments_own_folders_and_frees_its_id(tmp_path):
    roots = Roots.under(tmp_path)
    kept, gone = create(roots, config(seed=1)), create(roots, config(seed=2))
    populate(gone)
    populate(kept)
    parts = existing_parts(gone)
    assert set(parts) == {gone.results, gone.raw, gone.preprocessed, gone.trainings, gone.id_reservation}

    assert sorted(remove_experiment(gone)) == sorted(parts)
    assert not any(path.exists() or path.is_symlink() for path in parts)
    assert (gone.base_raw / "imagesTr" / "case_0_0000.nii.gz").read_bytes() == b"image"
    assert find_experiment(roots, gone.name) is None
    assert [layout.name for layout in list_experiments(roots)] == [kept.name]
    assert all(path.exists() for path in existing_parts(kept))
    assert reserve_experiment_id(roots, gone.base) == gone.experiment_id


def test_a_removal_killed_half_way_is_finished_by_the_next(tmp_path):
    roots = Roots.under(tmp_path)
    layout = create(roots, config(seed=1))
    populate(layout)
    layout.config_file.unlink()  # what a removal killed after its first step leaves
    remove_experiment(layout)
    assert existing_parts(layout) == []
