import json
from pathlib import Path

import numpy as np
import pytest

from nnactive_core.costs.accounting import loop_costs, pool_totals, write_costs
from nnactive_core.costs.basic import BASIC_COST_METRICS
from nnactive_core.patches.patch import Patch


class FakeDataset:
    """In-memory oracle with the parts of the Dataset protocol the accounting uses."""

    name = "Dataset999_Fake"
    file_ending = ".nii.gz"
    labels = {"background": 0, "a": 1, "b": 2}
    ignore_label = 3
    background = 0

    def __init__(self, root: Path):
        self.root = root
        self.reads: list[str] = []
        first = np.zeros((4, 4, 4), dtype=np.uint8)
        first[:2, :2, :2] = 1
        second = np.zeros((4, 4, 4), dtype=np.uint8)
        second[3, 3, :] = 2
        self.arrays = {"c0": first, "c1": second}

    def pool_cases(self):
        return sorted(self.arrays)

    def read_labels(self, case, split="pool"):
        self.reads.append(case)
        return self.arrays[case]

    def shape(self, case):
        return self.arrays[case].shape

    def case_of_file(self, file):
        return file.removesuffix(self.file_ending)


def test_loop_and_cumulative_sums(tmp_path):
    dataset = FakeDataset(tmp_path)
    loop0 = [Patch(file="c0.nii.gz", start=(0, 0, 0), size=(2, 2, 2))]
    loop1 = [
        Patch(file="c1.nii.gz", start=(2, 2, 0), size=(2, 2, 2)),
        Patch(file="c0.nii.gz", start=(2, 2, 2), size=(2, 2, 2)),
    ]
    payload = loop_costs([loop0, loop1], dataset, BASIC_COST_METRICS)
    assert payload["loop"]["patches"] == 2
    assert payload["loop"]["voxels"] == 16
    assert payload["loop"]["foreground_voxels"] == 2
    assert payload["loop"]["voxels_class_b"] == 2
    assert payload["loop"]["voxels_class_a"] == 0
    assert payload["loop"]["patches_foreground"] == 1
    assert payload["cumulative"]["patches"] == 3
    assert payload["cumulative"]["foreground_voxels"] == 10
    assert payload["cumulative"]["voxels_class_a"] == 8
    assert payload["cumulative"]["patches_class_a"] == 1
    assert sorted(dataset.reads) == ["c0", "c1"], "each case's labels are read once"


def test_patch_outside_case_names_file(tmp_path):
    patch = Patch(file="c0.nii.gz", start=(3, 0, 0), size=(2, 2, 2))
    with pytest.raises(ValueError, match="c0.nii.gz"):
        loop_costs([[patch]], FakeDataset(tmp_path), BASIC_COST_METRICS)


def test_column_collision_names_both_metrics(tmp_path):
    patch = Patch(file="c0.nii.gz", start=(0, 0, 0), size=(1, 1, 1))
    with pytest.raises(ValueError, match="'patches' and 'patches'"):
        loop_costs([[patch]], FakeDataset(tmp_path), [BASIC_COST_METRICS[0], BASIC_COST_METRICS[0]])


def test_pool_totals_cached_and_invalidated(tmp_path):
    dataset = FakeDataset(tmp_path)
    totals = pool_totals(dataset, BASIC_COST_METRICS)
    assert totals == {
        "voxels": 128,
        "foreground_voxels": 12,
        "voxels_class_background": 116,
        "voxels_class_a": 8,
        "voxels_class_b": 4,
    }
    cache = tmp_path / "nnactive_pool_costs.json"
    assert json.loads(cache.read_text())["totals"] == totals
    dataset.reads.clear()
    assert pool_totals(dataset, BASIC_COST_METRICS) == totals
    assert dataset.reads == [], "a valid cache is used"
    only_voxels = [m for m in BASIC_COST_METRICS if m.name == "voxels"]
    assert pool_totals(dataset, only_voxels) == {"voxels": 128}
    assert dataset.reads, "another metric set recomputes"


def test_pool_totals_in_cache_folder_and_written_payload(tmp_path):
    dataset = FakeDataset(tmp_path / "base")
    totals = pool_totals(dataset, BASIC_COST_METRICS, cache_dir=tmp_path / "cache")
    assert (tmp_path / "cache" / "Dataset999_Fake__nnactive_pool_costs.json").is_file()
    payload = loop_costs(
        [[Patch(file="c1.nii.gz", start=(0, 0, 0), size=(4, 4, 4))]], dataset, BASIC_COST_METRICS, pool=totals
    )
    write_costs(tmp_path / "loop_000" / "costs.json", payload)
    written = json.loads((tmp_path / "loop_000" / "costs.json").read_text())
    assert written["pool"]["foreground_voxels"] == 12
    assert written["cumulative"]["foreground_voxels"] == 4


def test_with_the_synthetic_oracle(tmp_path):
    from nnactive_core.testing.synthetic import SyntheticDataset

    dataset = SyntheticDataset.generate(cases=2, shape=(8, 8, 8), classes=3)
    case = dataset.pool_cases()[0]
    labels = dataset.read_labels(case)
    patch = Patch(file=f"{case}{dataset.file_ending}", start=(0, 0, 0), size=(8, 8, 8))
    pool = pool_totals(dataset, BASIC_COST_METRICS, cache_dir=tmp_path)
    payload = loop_costs([[patch]], dataset, BASIC_COST_METRICS, pool=pool)
    assert payload["cumulative"]["foreground_voxels"] == int((labels > 0).sum())
    assert payload["pool"]["voxels"] == 2 * 8**3


def test_basic_metrics_are_registered_by_the_core():
    from nnactive_core.costs.accounting import registered_cost_metrics

    names = [metric.name for metric in registered_cost_metrics()]
    assert {"patches", "voxels", "foreground-voxels", "class-voxels", "class-patches"} <= set(names)
    assert names == sorted(names)
