"""End to end: experiments that spend their budget in foreground voxels and in estimated annotation
seconds. What each loop is charged must be what its annotated labels cost, and every query must have
planned within its budget plus what the loop before left."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from e2e.conftest import BUDGETS
from e2e.runs import read_json

from nnactive_core.costs.annotation_time import AnnotationTime
from nnactive_core.datasets.nnunet_raw import open_nnunet_raw
from nnactive_core.patches.patch import load_loop, loop_file_name

pytestmark = pytest.mark.e2e


def annotated_cost(metric: str, labels: np.ndarray, foreground: tuple[int, ...]) -> float:
    if metric == "foreground_voxels":
        return float(np.isin(labels, foreground).sum())
    return AnnotationTime().seconds(labels, foreground)


@pytest.mark.parametrize("metric", sorted(BUDGETS))
def test_charged_totals_are_what_the_annotated_labels_cost(e2e_budgets, metric):
    experiment = e2e_budgets[metric]
    layout, config = experiment.layout, experiment.config
    assert config.budget_metric == metric and layout.name.split("__")[-1].startswith(f"bm-{metric}-qb")
    dataset = open_nnunet_raw(layout.base_raw)
    foreground = tuple(v for v in dataset.labels.values() if v != dataset.background)
    carry = 0.0
    for loop in range(config.query_steps):
        patches = load_loop(layout.raw / loop_file_name(loop))
        assert patches, f"loop {loop} bought nothing"
        charged = 0.0
        for patch in patches:
            image = sitk.ReadImage(str(layout.labels / patch.file))
            labels = sitk.GetArrayFromImage(image)[patch.slices]
            assert dataset.ignore_label not in labels  # the whole patch is annotated
            charged += annotated_cost(metric, labels, foreground)
        budget = read_json(layout.costs_file(loop))["budget"]
        assert budget["metric"] == metric
        assert budget["charged"] == pytest.approx(charged)
        if loop == 0:
            planned = config.starting_query_budget
        else:
            planned = config.query_budget + carry
            query = read_json(layout.query_file(loop - 1))
            chosen = [c["estimate"] for c in query["candidates"] if c["chosen"]]
            assert len(chosen) == len(patches)
            assert budget["estimated"] == pytest.approx(sum(chosen)) and sum(chosen) <= planned + 1e-6
            assert query["budget"]["planned"] == pytest.approx(planned)
        if planned is None:
            assert budget["carry"] == 0
        else:
            assert budget["planned"] == pytest.approx(planned)
            assert budget["carry"] == pytest.approx(planned - charged)
        carry = budget["carry"]


def test_the_analysis_draws_dice_against_annotation_hours_and_the_budget_gap(e2e_budgets, tmp_path):
    from nnactive_core.analysis.report import AnalysisOptions, analyze

    experiment = e2e_budgets["annotation_seconds"]
    options = AnalysisOptions(x_metrics=("annotation_seconds", "foreground_voxels"))
    report = analyze(experiment.layout.results.parent, tmp_path / "analysis", options)
    (setting,) = report.settings
    for name in ("dice_vs_budget.png", "dice_vs_annotation_seconds.png", "budget_gap.png"):
        assert (setting / name).is_file(), name
    curve = (setting / "dice_vs_annotation_seconds.csv").read_text().splitlines()
    assert curve[0].split(",")[:3] == ["strategy", "cost", "seeds"] and len(curve) == 21
    gaps = (setting / "budget_gap.csv").read_text().splitlines()
    assert len(gaps) == 1 + experiment.config.query_steps
