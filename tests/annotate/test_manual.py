"""Patches drawn by a person become the next loop's query: from a JSON loop file or from masks whose
connected components are the boxes; overlaps, boxes outside a case and unknown cases are refused."""

import json

import numpy as np
import pytest
from annotate.fake_experiment import LOOP0, LOOP1, build_experiment, patch, write_image

from nnactive_core.annotate.context import AnnotationError, open_experiment
from nnactive_core.annotate.manual import import_query, query_instructions
from nnactive_core.experiment.state import ANNOTATE, QUERY, State, load_state
from nnactive_core.patches.patch import load_loop


@pytest.fixture
def fake(tmp_path):
    return build_experiment(tmp_path / "exp", State(loop=1, step=QUERY))


@pytest.fixture
def handle(fake):
    return open_experiment(fake.roots, fake.layout.name)


def write_json(path, patches):
    path.write_text(json.dumps({"patches": [p.to_json() for p in patches]}))
    return path


def unchanged(fake):
    return not (fake.layout.raw / "loop_002.json").exists() and load_state(fake.layout.results).step == QUERY


def test_json_patches_become_the_next_loop_and_the_state_moves_to_annotate(tmp_path, fake, handle):
    drawn = [patch("tiny_001", (4, 4, 4)), patch("tiny_000", (3, 0, 0), (3, 2, 2))]
    loop, patches = import_query(handle, write_json(tmp_path / "drawn.json", drawn))
    assert loop == 2
    assert load_loop(fake.layout.raw / "loop_002.json") == patches == sorted(drawn, key=lambda p: p.file)
    state = load_state(fake.layout.results)
    assert (state.loop, state.step) == (1, ANNOTATE)
    query = json.loads((fake.layout.loop_results(1) / "query.json").read_text())
    assert query["strategy"] == "manual" and query["creates"] == "loop_002.json"
    assert [c["chosen"] for c in query["candidates"]] == [True, True]


def test_mask_components_are_the_patches(tmp_path, fake, handle):
    masks = tmp_path / "masks"
    mask = np.zeros((7, 8, 10), dtype=np.uint8)
    mask[0:2, 5:8, 6:9] = 1
    mask[4, 0, 0] = 1
    mask[5, 1, 1] = 1  # touches the voxel above diagonally: one component
    write_image(mask, masks / "tiny_001.nii.gz")
    mask = np.zeros((6, 9, 8), dtype=np.uint8)
    mask[0, 0, 7] = 3
    write_image(mask, masks / "tiny_002.nii.gz")
    _, patches = import_query(handle, masks)
    assert patches == [
        patch("tiny_001", (0, 5, 6), (2, 3, 3)),
        patch("tiny_001", (4, 0, 0), (2, 2, 2)),
        patch("tiny_002", (0, 0, 7), (1, 1, 1)),
    ]
    assert load_loop(fake.layout.raw / "loop_002.json") == patches


def test_overlaps_are_refused_naming_the_file_and_nothing_is_written(tmp_path, fake, handle):
    with_annotated = write_json(tmp_path / "a.json", [patch("tiny_000", (1, 2, 2))])  # on LOOP0[0]
    with pytest.raises(AnnotationError, match=r"a.json patch #0 \(tiny_000\): overlaps already annotated"):
        import_query(handle, with_annotated)
    with_itself = write_json(
        tmp_path / "b.json", [patch("tiny_001", (4, 4, 4)), patch("tiny_001", (5, 5, 5))]
    )
    with pytest.raises(AnnotationError, match=r"b.json patch #1 \(tiny_001\): overlaps .*b.json patch #0"):
        import_query(handle, with_itself)
    masks = tmp_path / "masks"
    mask = np.zeros((6, 9, 8), dtype=np.uint8)
    mask[LOOP1[2].slices] = 1  # exactly loop 1's box
    write_image(mask, masks / "tiny_002.nii.gz")
    with pytest.raises(
        AnnotationError, match=r"masks/tiny_002.nii.gz component 1 .*overlaps already annotated"
    ):
        import_query(handle, masks)
    assert unchanged(fake)
    assert load_loop(fake.layout.raw / "loop_000.json") == LOOP0
    assert load_loop(fake.layout.raw / "loop_001.json") == LOOP1


def test_bad_cases_and_boxes_are_all_listed(tmp_path, fake, handle):
    drawn = [
        patch("tiny_001", (6, 0, 0)),  # z 6..8 in a case of 7 slices
        patch("nobody", (0, 0, 0)),
        patch("tiny_100", (0, 0, 0)),  # held-out
    ]
    path = write_json(tmp_path / "drawn.json", drawn)
    with pytest.raises(AnnotationError) as caught:
        import_query(handle, path)
    text = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 3 and text.count("drawn.json patch #") == 3
    assert "outside case 'tiny_001'" in text and "'nobody.nii.gz'" in text and "not in the pool" in text
    masks = tmp_path / "masks"
    write_image(np.ones((6, 8, 9), dtype=np.uint8), masks / "stranger.nii.gz")
    write_image(np.ones((6, 8, 8), dtype=np.uint8), masks / "tiny_000.nii.gz")
    with pytest.raises(AnnotationError) as caught:
        import_query(handle, masks)
    assert [p.split(": ")[0].rsplit("/", 1)[-1] for p in caught.value.problems] == [
        "stranger.nii.gz",
        "tiny_000.nii.gz",
    ]
    assert "size (z, y, x) (6, 8, 8) differs" in caught.value.problems[1]
    assert unchanged(fake)


def test_only_at_a_query_step(tmp_path, fake, handle):
    from nnactive_core.experiment.state import save_state

    assert f"import-query --experiment {fake.layout.name} --input PATH" in query_instructions(fake.layout, 1)
    save_state(fake.layout.results, State(loop=1, step="train"))
    with pytest.raises(
        AnnotationError, match="at loop 1, step 'train'; drawn patches are imported at a query"
    ):
        import_query(handle, write_json(tmp_path / "d.json", [patch("tiny_001", (4, 4, 4))]))
    assert not (fake.layout.raw / "loop_002.json").exists()
