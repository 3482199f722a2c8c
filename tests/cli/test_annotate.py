"""``nnactive annotate``: export, import and import-query from the command line; user errors exit
non-zero with one-line messages (an import lists each violation on its own line first)."""

import json

import pytest
from annotate.fake_experiment import build_experiment, fill_from_truth, patch, write_image
from click.testing import CliRunner

from nnactive_core.cli.main import cli
from nnactive_core.experiment.human_oracle import imported_labels
from nnactive_core.experiment.state import ANNOTATE, QUERY, State, load_state, save_state


@pytest.fixture
def fake(tmp_path):
    return build_experiment(tmp_path / "exp")


def invoke(fake, *args):
    return CliRunner().invoke(
        cli, ["annotate", *[str(a) for a in args]], env=fake.env(), catch_exceptions=False
    )


def test_export_fill_import_round_trip(tmp_path, fake):
    out = tmp_path / "export"
    result = invoke(fake, "export", "--experiment", fake.layout.name, "--output", out)
    assert result.exit_code == 0, result.output
    assert "exported loop 1" in result.output and "2 case(s)" in result.output
    fill_from_truth(out, fake.dataset)
    result = invoke(fake, "import", "--experiment", fake.layout.folder, "--input", out)
    assert result.exit_code == 0, result.output
    assert "imported loop 1 labels of 2 case(s)" in result.output
    assert imported_labels(fake.layout, 1) is not None


def test_a_rejected_import_lists_each_problem_and_exits_non_zero(tmp_path, fake):
    out = tmp_path / "export"
    assert (
        invoke(
            fake, "export", "--experiment", fake.layout.name, "--output", out, "--format", "nrrd"
        ).exit_code
        == 0
    )
    fill_from_truth(out, fake.dataset, ending=".nrrd")
    (out / "labels" / "tiny_000.nrrd").unlink()
    write_image(fake.dataset.read_labels("tiny_001"), out / "labels" / "tiny_001.nii.gz")
    result = invoke(fake, "import", "--experiment", fake.layout.name, "--input", out)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    assert "tiny_000.nrrd: missing" in lines[0] and "tiny_001.nii.gz: 'tiny_001' is not a case" in lines[1]
    assert lines[2] == "Error: import rejected: 2 problems (listed above); nothing written"
    assert imported_labels(fake.layout, 1) is None


def test_import_query_from_the_command_line(tmp_path, fake):
    drawn = tmp_path / "drawn.json"
    drawn.write_text(json.dumps({"patches": [patch("tiny_001", (4, 4, 4)).to_json()]}))
    result = invoke(fake, "import-query", "--experiment", fake.layout.name, "--input", drawn)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "step 'annotate'" in result.output
    assert len(result.output.strip().splitlines()) == 1
    save_state(fake.layout.results, State(loop=1, step=QUERY))
    result = invoke(fake, "import-query", "--experiment", fake.layout.name, "--input", drawn)
    assert result.exit_code == 0, result.output
    assert "wrote loop_002.json: 1 box(es) in 1 case(s)" in result.output
    assert load_state(fake.layout.results).step == ANNOTATE


def test_unknown_experiment_and_missing_environment(tmp_path, fake):
    result = invoke(fake, "export", "--experiment", "Nope__patch-1_1_1", "--output", tmp_path / "x")
    assert result.exit_code == 1 and "no experiment named 'Nope__patch-1_1_1'" in result.output
    result = CliRunner().invoke(
        cli,
        ["annotate", "export", "--experiment", "x", "--output", str(tmp_path / "x")],
        env={"nnActive_raw": "", "nnActive_data": ""},
    )
    assert (
        result.exit_code == 1 and "environment variable" in result.output and "Traceback" not in result.output
    )
