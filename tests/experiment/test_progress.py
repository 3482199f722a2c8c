import io
import json

from nnactive_core.experiment.layout import ExperimentLayout, Roots
from nnactive_core.experiment.progress import LOG_FILE, Reporter, latest_results, status_table


def test_reporter_logs_steps_progress_and_lines(tmp_path):
    lines = []
    with Reporter(tmp_path, "exp", loops=3, display=False, echo=lines.append) as reporter:
        reporter.step(1, "train")
        reporter.advancer("epochs")(2, 5)
        reporter.say("loop 2/3 done: budget 20 patches; mean Dice 0.5000")
        reporter.step_done()
        reporter.error("boom")
    log = (tmp_path / LOG_FILE).read_text()
    assert "loop 1: train started" in log and "loop 1: train: epochs 2/5" in log
    assert "loop 1: train finished in" in log and "ERROR boom" in log
    assert lines == ["loop 2/3 done: budget 20 patches; mean Dice 0.5000"]


def test_the_rich_display_prints_summaries_above_the_bars(tmp_path, monkeypatch):
    from rich.console import Console

    out = io.StringIO()
    monkeypatch.setattr(
        "rich.console.Console", lambda **kw: Console(file=out, force_terminal=False, width=120)
    )
    with Reporter(tmp_path, "exp", loops=2, display=True) as reporter:
        reporter.step(0, "validate", total=4)
        reporter.advance(4, 4, "validation cases")
        reporter.say("loop 1/2 done")
        reporter.step_done()
        reporter.loops_done(1)
    assert "loop 1/2 done" in out.getvalue()


def test_latest_results_and_status_table(tmp_path):
    from rich.console import Console

    roots = Roots.under(tmp_path)
    layout = ExperimentLayout(roots=roots, base="Dataset900_Demo", folder="Dataset001_Demo__x")
    for loop, (patches, dice) in enumerate(((10, 0.3), (20, 0.45))):
        folder = layout.loop_results(loop)
        folder.mkdir(parents=True)
        (folder / "costs.json").write_text(json.dumps({"cumulative": {"patches": patches}}))
        (folder / "summary.json").write_text(json.dumps({"foreground_mean": {"Dice": dice}}))
    (layout.loop_results(2)).mkdir()
    (layout.loop_results(2) / "costs.json").write_text(json.dumps({"cumulative": {"patches": 30}}))
    assert latest_results(layout) == (30, 0.45)
    (layout.results / "config.json").write_text(
        json.dumps(
            {
                "dataset": "Dataset900_Demo",
                "patch_size": [4, 4, 4],
                "query_size": 10,
                "query_steps": 3,
                "strategy": "random",
            }
        )
    )
    (layout.results / "state.json").write_text(
        json.dumps({"loop": 2, "step": "train", "last_error": "x failed"})
    )
    out = io.StringIO()
    Console(file=out, width=200).print(status_table([layout]))
    text = out.getvalue()
    assert "Demo__x" in text and "2/2" in text and "train" in text and "30" in text and "0.4500" in text
    assert "failed" in text and "x failed" in text
