import io

from nnactive_core.experiment.layout import LOG_FILE
from nnactive_core.experiment.progress import Reporter


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
