"""Bad input through the ``nnactive`` command line, as a hostile or a clumsy user gives it: every case
exits non-zero with one message naming the culprit (file, entry, field, option or plugin), shows no
traceback, and leaves every file as it was (the bytes of the whole tree are compared before and
after). The nnU-Net side is faked (:class:`experiment.fake_nnunet_steps.FakeNnunetSteps`); nothing
trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from annotate.fake_experiment import build_experiment, fill_from_truth
from click.testing import CliRunner
from experiment.fake_nnunet_steps import SMALL_DEMO, FakeNnunetSteps

from nnactive_core import plugins
from nnactive_core.cli.main import cli
from nnactive_core.datasets.demo import DemoAdapter
from nnactive_core.experiment import nnunet_steps
from nnactive_core.experiment.layout import Roots, list_experiments
from nnactive_core.experiment.state import ANNOTATE, QUERY, State, save_state
from nnactive_core.patches.patch import Patch, save_loop
from nnactive_core.strategies.api import PlacementStrategy, ScoreStrategy
from nnactive_core.testing.synthetic import make_probabilities

DEMO = "Dataset900_Demo"
SETUP = [
    "--dataset", DEMO, "--dataset-adapter", "demo", "--strategy", "random", "--patch-size", "4",
    "--query-size", "10", "--loops", "2", "--folds", "2", "--profile", "tiny", "--no-val-mirroring",
    "--seed", "3", *[f"--dataset-option={k}={v}" for k, v in SMALL_DEMO.items()],
]  # fmt: skip
CASE_SHAPE = (SMALL_DEMO["size"],) * 3
DEVICE_NAME = nnunet_steps.device_name


class Explodes(PlacementStrategy):
    name = "explodes"
    description = "A placement plugin that raises."

    def place(self, oracle, ctx):
        raise RuntimeError("boom inside the plugin")


class MeanForeground(ScoreStrategy):
    name = "mean-foreground"
    description = "Mean probability of class 1."

    def voxel_scores(self, probs, ctx):
        return probs[:, 1].float().mean(0)[None]


@pytest.fixture(autouse=True)
def test_plugins(monkeypatch):
    owner = plugins.Distribution(name="test-bad-inputs", version="0.1")
    for strategy in (Explodes(), MeanForeground()):
        monkeypatch.setitem(plugins.registry().entries["strategy"], strategy.name, (strategy, owner))


@pytest.fixture
def roots(tmp_path, monkeypatch) -> Roots:
    roots = Roots.under(tmp_path / "nnactive")
    for key, value in roots.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("COLUMNS", "250")
    return roots


@pytest.fixture
def fake(tmp_path, monkeypatch) -> FakeNnunetSteps:
    steps = FakeNnunetSteps(root=tmp_path).install(monkeypatch)
    # the device is checked for real: it is among the bad inputs
    monkeypatch.setattr(nnunet_steps, "device_name", DEVICE_NAME)
    return steps


@pytest.fixture
def experiment(roots, fake):
    """An experiment set up through the command line (state: loop 0, preprocess), with its base
    dataset and the group's cost cache in place."""
    result = invoke("setup", *SETUP)
    assert result.exit_code == 0, result.output
    return list_experiments(roots)[0]


def invoke(*arguments, input: str | None = None):
    return CliRunner().invoke(cli, [str(a) for a in arguments], input=input)


def snapshot(root: Path) -> dict[str, object]:
    """Every folder, file (its bytes) and link (its target) below ``root``, links not followed."""
    found: dict[str, object] = {}
    for folder, subfolders, files in os.walk(root):
        for name in subfolders + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = f"-> {os.readlink(path)}"
            elif path.is_file():
                found[key] = path.read_bytes()
            else:
                found[key] = "folder"
    return found


def refused(result, *culprits: str, code: int = 1) -> None:
    """Exit ``code``, every culprit named, no traceback, no exception other than click's exit."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output, result.output
    for culprit in culprits:
        assert culprit in result.output, f"{culprit!r} not in {result.output!r}"


def unchanged(root: Path, command, *culprits: str, code: int = 1):
    before = snapshot(root)
    result = command()
    refused(result, *culprits, code=code)
    assert snapshot(root) == before, "files changed"
    return result


def write_loop(layout, loop: int, records: list) -> Path:
    path = layout.raw / f"loop_{loop:03d}.json"
    path.write_text(json.dumps({"patches": records}))
    return path


def demo_dataset(roots: Roots) -> Path:
    return DemoAdapter().open(roots.base_raw(DEMO), **SMALL_DEMO).root


# --- data ----------------------------------------------------------------------------------------


@pytest.fixture
def raw_dataset(roots) -> Path:
    return demo_dataset(roots)


def with_voxel(path: Path, value: float) -> None:
    image = sitk.ReadImage(str(path))
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    array[1, 2, 3] = value
    written = sitk.GetImageFromArray(array)
    written.CopyInformation(image)
    sitk.WriteImage(written, str(path), True)


def test_data_check_malformed_dataset_json(tmp_path, raw_dataset):
    (raw_dataset / "dataset.json").write_text("{not json")
    unchanged(tmp_path, lambda: invoke("data", "check", raw_dataset), "dataset.json", "malformed JSON")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_data_check_nan_or_infinite_voxels_name_the_case(tmp_path, raw_dataset, value):
    with_voxel(raw_dataset / "imagesTr" / "demo_002_0000.nii.gz", value)
    unchanged(tmp_path, lambda: invoke("data", "check", raw_dataset), "case 'demo_002'", "NaN or infinite")


def test_data_plan_refuses_nan_voxels_before_planning(tmp_path, raw_dataset):
    with_voxel(raw_dataset / "imagesVal" / "demo_006_0000.nii.gz", np.nan)
    unchanged(tmp_path, lambda: invoke("data", "plan", raw_dataset), "case 'demo_006'", "NaN or infinite")


@pytest.fixture
def unsplit(tmp_path) -> Path:
    result = invoke(
        "data", "demo", "--output", tmp_path / "raw", "--cases", 6, "--validation-cases", 0, "--size", 16
    )
    assert result.exit_code == 0, result.output
    return tmp_path / "raw" / DEMO


def test_split_given_file_naming_an_unknown_case(tmp_path, unsplit):
    given = tmp_path / "validation.txt"
    given.write_text("demo_001\n# the second one\ndemo_099\n")
    unchanged(
        tmp_path,
        lambda: invoke("data", "split", unsplit, "--validation-cases", given),
        f"{given} line 3",
        "'demo_099' is not a case",
    )


def test_split_given_splits_file_without_the_fold(tmp_path, unsplit):
    given = tmp_path / "splits_final.json"
    given.write_text(json.dumps([{"train": ["demo_000"], "val": ["demo_001"]}]))
    unchanged(
        tmp_path,
        lambda: invoke("data", "split", unsplit, "--validation-cases", given, "--fold", 2),
        str(given),
        "no fold 2",
    )


def test_split_given_file_holding_every_case(tmp_path, unsplit):
    given = tmp_path / "validation.txt"
    given.write_text("\n".join(f"demo_{i:03d}" for i in range(6)))
    unchanged(
        tmp_path,
        lambda: invoke("data", "split", unsplit, "--validation-cases", given),
        str(given),
        "names 6 of 6 cases",
    )


def test_split_given_file_with_seeded_settings(tmp_path, unsplit):
    given = tmp_path / "validation.txt"
    given.write_text("demo_001\n")
    unchanged(
        tmp_path,
        lambda: invoke("data", "split", unsplit, "--validation-cases", given, "--seed", 4),
        "--seed",
        code=2,
    )


def test_split_bad_test_size(tmp_path, unsplit):
    unchanged(
        tmp_path, lambda: invoke("data", "split", unsplit, "--test-size", "1.5"), "1.5", "between 0 and 1"
    )


@pytest.mark.parametrize(
    "arguments, culprits",
    [
        (("--test-size", "3"), ("--test-size", "would choose another validation set")),
        (("--seed", "7"), ("--seed", "would choose another validation set")),
        (("--group-separator", "_"), ("--group-separator", "cannot split it", "0 of 1 patient groups")),
    ],
)
def test_split_of_a_split_dataset_refuses_other_settings(tmp_path, unsplit, arguments, culprits):
    assert invoke("data", "split", unsplit, "--test-size", "2").exit_code == 0
    unchanged(tmp_path, lambda: invoke("data", "split", unsplit, *arguments), "already split", *culprits)


def test_split_of_a_split_dataset_refuses_another_given_split(tmp_path, unsplit):
    assert invoke("data", "split", unsplit, "--test-size", "2").exit_code == 0
    validation = sorted(p.name.removesuffix(".nii.gz") for p in (unsplit / "labelsVal").iterdir())
    others = sorted({f"demo_{i:03d}" for i in range(6)} - set(validation))
    given = tmp_path / "validation.txt"
    given.write_text(others[0] + "\n")
    unchanged(
        tmp_path, lambda: invoke("data", "split", unsplit, "--validation-cases", given), "--validation-cases"
    )


def test_data_demo_on_a_full_disk_names_the_file(tmp_path, monkeypatch):
    import nnactive_core.io as io_module

    def truncating(image, path, compress=True):
        Path(path).write_bytes(b"\x1f\x8b")  # what ITK leaves when the disk fills (it only prints)

    monkeypatch.setattr(sitk, "WriteImage", truncating)
    monkeypatch.setattr(io_module, "FULL_DISK_BYTES", 1 << 62)
    result = unchanged(
        tmp_path,
        lambda: invoke("data", "demo", "--output", tmp_path, "--cases", 2, "--size", 16),
        "no space left on device while writing",
        "demo_000_0000.nii.gz",
    )
    assert not list(tmp_path.iterdir())
    assert "Error:" in result.output


# --- experiment config ---------------------------------------------------------------------------


def with_option(flag: str, value: str) -> list[str]:
    """``SETUP`` with ``flag`` set to ``value`` (replaced, or added)."""
    arguments = list(SETUP)
    if flag in arguments:
        arguments[arguments.index(flag) + 1] = value
        return arguments
    return [*arguments, flag, value]


@pytest.mark.parametrize(
    "flag, value, culprits",
    [
        ("--patch-size", "100,4,4", ("'patch_size'", "along z (100 > 16 voxels)", "--clip-patch-to-case")),
        ("--query-size", "500", ("'query_size'", "hold at most 384 non-overlapping patches")),
        ("--starting-budget-size", "400", ("'starting_budget_size'", "starting budget 400")),
        ("--device", "gpu0", ("'device'", "unknown device 'gpu0'")),
        ("--device", "cuda:7", ("'device'", "'cuda:7'")),
        ("--strategy", "no-such-strategy", ("strategy 'no-such-strategy' is not recognized",)),
        ("--starting-budget", "mean-foreground", ("starting budget 'mean-foreground'", "test-bad-inputs")),
        ("--dataset-adapter", "no-such-adapter", ("dataset adapter 'no-such-adapter'",)),
        ("--dataset-option", "size=big", ("demo option 'size'", "'big'")),
        ("--dataset-option", "colour=1", ("'dataset_options'", "colour")),
        ("--train-option", "epochs=many", ("'training_overrides'", "epochs")),
        ("--seed", "x", ("--seed",)),
    ],
)
def test_setup_refuses_bad_values_before_writing(tmp_path, roots, fake, flag, value, culprits):
    demo_dataset(roots)  # the demo adapter builds its dataset on first use: not part of the check
    code = 2 if flag == "--seed" else 1
    unchanged(tmp_path, lambda: invoke("setup", *with_option(flag, value)), *culprits, code=code)


def test_setup_with_a_score_strategy_that_cannot_fill_a_query(tmp_path, roots, fake):
    demo_dataset(roots)
    arguments = [*with_option("--strategy", "mean-foreground"), "--patches-per-case", "1"]
    unchanged(tmp_path, lambda: invoke("setup", *arguments), "'query_size'", "at most 1 candidate(s)")


def test_a_plugin_that_raises_in_setup_is_named_and_the_setup_rolled_back(tmp_path, experiment):
    """After creating the experiment folder: the experiment goes again, no id is used up."""
    arguments = [*with_option("--starting-budget", "explodes"), "--seed", "4"]
    unchanged(
        tmp_path,
        lambda: invoke("setup", *arguments),
        "plugin test-bad-inputs: strategy 'explodes'",
        "boom inside the plugin",
        "nothing was kept",
    )


@pytest.mark.parametrize(
    "content, culprits, code",
    [
        ("{broken", ("config.json", "not valid JSON"), 2),
        (json.dumps({"colour": "red"}), ("unknown experiment config field(s) colour",), 1),
        (json.dumps({"patch_overlap": "many"}), ("'patch_overlap'", "'many'"), 1),
    ],
)
def test_setup_config_file_problems(tmp_path, roots, fake, content, culprits, code):
    demo_dataset(roots)
    config = tmp_path / "config.json"
    config.write_text(content)
    unchanged(tmp_path, lambda: invoke("setup", *SETUP, "--config", config), *culprits, code=code)


# --- loop files ----------------------------------------------------------------------------------


def entry(file="demo_000.nii.gz", coords=(0, 0, 0), size=(4, 4, 4)) -> dict:
    return {"file": file, "coords": list(coords), "size": list(size)}


@pytest.mark.parametrize(
    "records, culprits",
    [
        ([entry(coords=(14, 0, 0))], ("loop_000.json patch #0", "does not fit case 'demo_000'")),
        ([entry(size=(20, 4, 4))], ("loop_000.json patch #0", "does not fit")),
        ([entry(), entry()], ("loop_000.json patch #1", "the same box as", "patch #0")),
        ([entry(), entry(coords=(2, 2, 2))], ("loop_000.json patch #1", "overlaps", "patch #0")),
        ([entry(file="demo_006.nii.gz")], ("patch #0", "'demo_006.nii.gz' is not a pool case")),
        ([entry(file="slab")], ("patch #0", "'slab' is not a label file name")),
        ([entry(file="../../../../tmp/x.nii.gz")], ("patch #0", "../../../../tmp/x.nii.gz")),
        ([{"file": "demo_000.nii.gz", "size": [4, 4, 4]}], ("patch #0", "invalid record", "coords")),
        ([entry(coords=(-1, 0, 0))], ("patch #0", "negative start")),
        ("not a list", ("loop_000.json", "'patches' must be a list")),
    ],
)
def test_run_refuses_bad_loop_files_before_any_step(tmp_path, experiment, fake, records, culprits):
    path = experiment.raw / "loop_000.json"
    if isinstance(records, str):
        path.write_text(json.dumps({"patches": records}))
    else:
        write_loop(experiment, 0, records)
    unchanged(tmp_path, lambda: invoke("run", "--experiment", experiment.name), str(path), *culprits)
    assert fake.calls == [("plans",)]  # setup's plans; nothing ran afterwards


def test_run_refuses_a_loop_file_that_is_not_json(tmp_path, experiment, fake):
    path = experiment.raw / "loop_000.json"
    path.write_text("{")
    unchanged(tmp_path, lambda: invoke("run", "--experiment", experiment.name), str(path), "not valid JSON")


def test_run_refuses_a_patch_that_overlaps_an_earlier_loop(tmp_path, experiment, fake):
    first = json.loads((experiment.raw / "loop_000.json").read_text())["patches"][0]
    shifted = [c + 1 if c < CASE_SHAPE[0] // 2 else c - 1 for c in first["coords"]]
    write_loop(experiment, 1, [{**first, "coords": shifted}])
    save_state(experiment.results, State(loop=0, step=ANNOTATE))
    unchanged(
        tmp_path,
        lambda: invoke("run", "--experiment", experiment.name),
        "loop_001.json patch #0",
        "overlaps",
        "loop_000.json patch #0",
    )


def test_remove_refuses_while_a_run_holds_the_experiment(tmp_path, experiment):
    hold = (
        "import sys, time; from nnactive_core.experiment.lock import ExperimentLock; "
        "ExperimentLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", hold, str(experiment.results)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"locked"
        unchanged(
            tmp_path,
            lambda: invoke("remove", "--experiment", experiment.name, "--yes"),
            "is running",
            f"pid {holder.pid}",
        )
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("name", ["../../nnactive", "/etc", "Dataset001_x/../.."])
def test_remove_of_names_that_are_no_experiment(tmp_path, experiment, name):
    unchanged(
        tmp_path, lambda: invoke("remove", "--experiment", name, "--yes"), f"experiment {name!r} not found"
    )


# --- pictures and analysis read paths from files ------------------------------------------------


def test_visualize_queries_refuses_a_loop_file_leading_outside(tmp_path, experiment):
    path = write_loop(experiment, 0, [entry(file="../../../../../../tmp/x.nii.gz")])
    output = tmp_path / "pictures"
    unchanged(
        tmp_path,
        lambda: invoke("visualize-queries", "--experiment", experiment.name, "--output", output),
        f"{path} patch #0 field 'file'",
        "refused",
    )


def test_visualize_queries_refuses_a_paths_file_leading_elsewhere(tmp_path, experiment):
    paths = json.loads(experiment.paths_file.read_text())
    experiment.paths_file.write_text(json.dumps({**paths, "raw": str(tmp_path / "elsewhere")}))
    unchanged(
        tmp_path,
        lambda: invoke("visualize-queries", "--experiment", experiment.name, "--output", tmp_path / "out"),
        "paths.json: field 'raw'",
        "refused",
    )


# --- annotate ------------------------------------------------------------------------------------


@pytest.fixture
def exported(tmp_path, monkeypatch):
    fake_experiment = build_experiment(tmp_path / "experiment")
    for key, value in fake_experiment.env().items():
        monkeypatch.setenv(key, value)
    export = tmp_path / "export"
    result = invoke("annotate", "export", "--experiment", fake_experiment.layout.name, "--output", export)
    assert result.exit_code == 0, result.output
    fill_from_truth(export, fake_experiment.dataset)
    return fake_experiment, export


def import_labels(fake_experiment, export):
    return invoke("annotate", "import", "--experiment", fake_experiment.layout.name, "--input", export)


def test_import_refuses_a_link_to_a_file_outside_and_never_shows_its_content(tmp_path, exported):
    fake_experiment, export = exported
    secret = tmp_path / "secret.nii.gz"
    secret.write_text("TOP-SECRET-CONTENT of a file nobody may read")
    label = export / "labels" / "tiny_000.nii.gz"
    label.unlink()
    label.symlink_to(secret)
    result = unchanged(
        tmp_path, lambda: import_labels(fake_experiment, export), str(label), "outside the export"
    )
    assert "TOP-SECRET" not in result.output


def test_import_never_shows_the_content_of_a_file_that_is_no_image(tmp_path, exported):
    fake_experiment, export = exported
    label = export / "labels" / "tiny_002.nii.gz"
    label.write_text("TOP-SECRET-CONTENT, not an image")
    result = unchanged(tmp_path, lambda: import_labels(fake_experiment, export), str(label), "not gzip")
    assert "TOP-SECRET" not in result.output and "b'TO" not in result.output


def test_import_refuses_a_labels_folder_that_is_a_link_outside(tmp_path, exported):
    fake_experiment, export = exported
    (export / "labels").rename(tmp_path / "moved-labels")
    (export / "labels").symlink_to(tmp_path / "moved-labels")
    unchanged(tmp_path, lambda: import_labels(fake_experiment, export), "labels", "outside the export")


@pytest.mark.parametrize("field", ["partial", "mask", "labels"])
def test_import_refuses_a_manifest_leading_outside(tmp_path, exported, field):
    fake_experiment, export = exported
    manifest = json.loads((export / "manifest.json").read_text())
    manifest["cases"][0][field] = "../../../../etc/passwd"
    (export / "manifest.json").write_text(json.dumps(manifest))
    unchanged(
        tmp_path,
        lambda: import_labels(fake_experiment, export),
        "manifest.json case",
        f"field {field!r}",
        "refused",
    )


def test_import_query_refuses_a_box_on_a_file_outside(tmp_path, monkeypatch):
    fake_experiment = build_experiment(tmp_path / "experiment", state=State(loop=1, step=QUERY))
    for key, value in fake_experiment.env().items():
        monkeypatch.setenv(key, value)
    drawn = tmp_path / "drawn.json"
    drawn.write_text(json.dumps({"patches": [entry(file="../../../x.nii.gz", size=(1, 1, 1))]}))
    unchanged(
        tmp_path,
        lambda: invoke(
            "annotate", "import-query", "--experiment", fake_experiment.layout.name, "--input", drawn
        ),
        f"{drawn} patch #0",
        "not a plain file name",
    )


# --- grid ----------------------------------------------------------------------------------------


def grid_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, culprits",
    [
        (
            '[grid]\ndatasets = ["Dataset001_a/../../etc"]\nstrategies = ["random"]\nquery_sizes = [2]\n'
            "[experiment]\npatch_size = 4\n",
            ("'dataset'", "Dataset001_a/../../etc"),
        ),
        (
            '[grid]\ndatasets = ["Dataset001_a"]\nstrategies = ["random"]\nquery_sizes = [2]\n',
            ("missing experiment config field(s) patch_size",),
        ),
        ("[grid\n", ("grid.toml", "not valid TOML")),
        ('[grid]\ncolours = ["red"]\n', ("unknown key(s) colours",)),
    ],
)
def test_grid_file_problems_are_named(tmp_path, roots, text, culprits):
    path = grid_file(tmp_path, text)
    unchanged(tmp_path, lambda: invoke("grid", "status", path), *culprits)


def test_grid_dataset_option_with_a_bad_value_names_the_option(tmp_path, roots):
    path = grid_file(
        tmp_path,
        f'[grid]\ndatasets = ["{DEMO}"]\nstrategies = ["random"]\nquery_sizes = [2]\n'
        '[experiment]\npatch_size = 4\ndataset_adapter = "demo"\ndataset_options = {size = "big"}\n',
    )
    unchanged(
        tmp_path, lambda: invoke("grid", "run", path, "--launcher", "local"), "demo option 'size'", "'big'"
    )


# --- query and score ------------------------------------------------------------------------------


@pytest.fixture
def probs(tmp_path) -> Path:
    folder = tmp_path / "probs"
    folder.mkdir()
    for index, case in enumerate(("case_a", "case_b")):
        np.save(folder / f"{case}.npy", make_probabilities(shape=(8, 9, 10), seed=index, dtype="float16"))
    return folder


def query(probs: Path, out: Path, *extra):
    arguments = ["query", "--strategy", "mean-foreground", "--probs", probs, "--patch-size", 2, 2, 2]
    return invoke(*arguments, "--query-size", 2, "--out", out, *extra)


def test_query_out_inside_a_file(tmp_path, probs):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    unchanged(tmp_path, lambda: query(probs, blocker / "query.json"), "--out", str(blocker), code=2)


def test_query_out_is_a_folder(tmp_path, probs):
    unchanged(tmp_path, lambda: query(probs, probs), "--out", "is a directory", code=2)


@pytest.mark.parametrize("device, culprit", [("gpu0", "unknown device 'gpu0'"), ("cuda:3", "'cuda:3'")])
def test_query_bad_device(tmp_path, probs, device, culprit):
    unchanged(
        tmp_path, lambda: query(probs, tmp_path / "q.json", "--device", device), "--device", culprit, code=2
    )


@pytest.mark.parametrize(
    "file, culprit",
    [("slab", "'slab' names no case of --probs"), ("../../case_a.nii.gz", "not a plain file name")],
)
def test_query_annotated_entries_naming_no_case(tmp_path, probs, file, culprit):
    annotated = tmp_path / "loop_000.json"
    annotated.write_text(json.dumps({"patches": [entry(file=file, size=(2, 2, 2))]}))
    unchanged(
        tmp_path, lambda: query(probs, tmp_path / "q.json", "--annotated", annotated), str(annotated), culprit
    )


def score(probs: Path, out: Path, *extra):
    return invoke(
        "score", "--strategy", "mean-foreground", "--probs", probs / "case_a.npy", "--out", out, *extra
    )


def test_score_out_inside_a_file(tmp_path, probs):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    unchanged(tmp_path, lambda: score(probs, blocker / "map.npy"), "--out", str(blocker), code=2)


def test_score_bad_device(tmp_path, probs):
    unchanged(
        tmp_path,
        lambda: score(probs, tmp_path / "map.npy", "--device", "nonsense"),
        "--device",
        "'nonsense'",
        code=2,
    )


# --- what the refusals above leave possible -----------------------------------------------------


def test_query_annotated_entries_with_or_without_the_ending_and_a_subset_pool(tmp_path, probs):
    annotated = tmp_path / "loop_000.json"
    save_loop(tmp_path, 0, [Patch(file="case_a", start=(0, 0, 0), size=(8, 9, 10))])
    assert query(probs, tmp_path / "q.json", "--annotated", annotated).exit_code == 0
    chosen = json.loads((tmp_path / "q.json").read_text())["patches"]
    assert {patch["file"] for patch in chosen} == {"case_b.nii.gz"}  # case_a is fully annotated
    save_loop(tmp_path, 0, [Patch(file="case_z.nii.gz", start=(0, 0, 0), size=(1, 1, 1))])
    assert query(probs, tmp_path / "q.json", "--annotated", annotated, "--pool-subset").exit_code == 0


def test_a_patch_larger_than_the_cases_is_allowed_only_explicitly(roots, fake):
    demo_dataset(roots)
    result = invoke("setup", *with_option("--patch-size", "100,4,4"), "--clip-patch-to-case")
    assert result.exit_code == 0, result.output
    assert "warning: patch size 100x4x4 is larger than 6 of 6 pool case(s)" in result.output
    assert "cover the whole case along that axis" in result.output


def test_the_corrected_command_works_after_a_rolled_back_setup(roots, experiment):
    arguments = [*with_option("--starting-budget", "explodes"), "--seed", "4"]
    assert invoke("setup", *arguments).exit_code == 1
    result = invoke("setup", *with_option("--seed", "4"))
    assert result.exit_code == 0, result.output
    assert [layout.experiment_id for layout in list_experiments(roots)] == [1, 2]
