"""Option strings -> executor settings, with errors that name the option."""

from __future__ import annotations

from pathlib import Path

import pytest
from nnactive_core.plugins import load_registry

from nnactive_launcher_submitit.launcher import SubmititLauncher, error_summary
from nnactive_launcher_submitit.settings import SubmititSettings, parse_memory_gb, parse_time_minutes


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("90", 90),
        ("2.5", 2.5),
        ("30:30", 30.5),
        ("2:00:00", 120),
        ("1-00:00:00", 1440),
        ("1-2", 1560),
        ("1-2:30", 1590),
        ("0:0:30", 0.5),
    ],
)
def test_time_formats_follow_sbatch(text, minutes):
    assert parse_time_minutes(text) == pytest.approx(minutes)


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "-5", "0", "1-x"])
def test_bad_times(text):
    with pytest.raises(ValueError, match="option time="):
        parse_time_minutes(text)


@pytest.mark.parametrize(("text", "gb"), [("64", 64), ("64G", 64), ("64GB", 64), ("512M", 0.5), ("1T", 1024)])
def test_memory(text, gb):
    assert parse_memory_gb(text) == pytest.approx(gb)


def test_defaults_and_slurm_parameters(tmp_path):
    settings = SubmititSettings.from_options({}, env={"nnActive_data": str(tmp_path)})
    assert settings.folder == tmp_path / "submitit"
    assert settings.cluster == "slurm" and settings.wait is False
    assert settings.slurm_parameters() == {
        "name": "nnactive",
        "timeout_min": 1440,
        "nodes": 1,
        "tasks_per_node": 1,
        "gpus_per_node": 1,
        "slurm_array_parallelism": 256,
        "slurm_signal_delay_s": 180,
    }


def test_local_waits_by_default_and_keeps_fractional_minutes(tmp_path):
    settings = SubmititSettings.from_options(
        {"cluster": "local", "time": "0.2", "signal_delay": "5", "stop_grace": "1", "folder": str(tmp_path)}
    )
    assert settings.wait is True
    assert settings.local_parameters() == {
        "timeout_min": 0.2,
        "signal_delay_s": 5,
        "tasks_per_node": 1,
        "gpus_per_node": 1,
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cluster": "lsf"}, "cluster='lsf' is not one of slurm, local"),
        ({"gpus": "-1"}, "gpus='-1' must be at least 0"),
        ({"cpus": "many"}, "cpus='many' is not an integer"),
        ({"mem": "lots"}, "mem='lots' is not a memory size"),
        ({"wait": "perhaps"}, "wait='perhaps' is not true or false"),
        ({"stop_grace": "200"}, "must be shorter than signal_delay"),
        ({"time": "2"}, "signal_delay=180 must be shorter than the time limit"),
    ],
)
def test_bad_options_name_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        SubmititSettings.from_options(options, env={})


def test_unknown_option_is_refused():
    with pytest.raises(ValueError, match="does not accept option"):
        SubmititLauncher().launch([], nodes="4")


def test_registered_through_the_entry_point():
    registry = load_registry()
    launcher = registry.get("launcher", "submitit")
    assert isinstance(launcher, SubmititLauncher)
    assert registry.owner("launcher", "submitit").name == "nnactive-launcher-submitit"
    assert {"partition", "time", "gpus", "mem", "cpus", "array_parallelism"} <= set(launcher.options)


def test_error_summary_takes_the_last_trace_line():
    trace = (
        "Traceback (most recent call last):\n  File x\nRuntimeError: exp: `nnactive run` exited with code 1"
    )
    error = RuntimeError(
        f"Job (task=0) failed during processing with trace:\n{'-' * 22}\n{trace}\n{'-' * 22}\nsee"
    )
    assert error_summary(error) == "RuntimeError: exp: `nnactive run` exited with code 1"
    assert error_summary(ValueError("first\nsecond")) == "ValueError: first"


def test_folder_option_expands_user(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert SubmititSettings.from_options({"folder": "~/sub"}, env={}).folder == Path(tmp_path) / "sub"


def test_gpus_per_node_is_submitits_name_for_gpus(tmp_path):
    env = {"nnActive_data": str(tmp_path)}
    settings = SubmititSettings.from_options({"gpus_per_node": "2"}, env=env)
    assert settings.gpus == 2 and settings.slurm_parameters()["gpus_per_node"] == 2
    assert SubmititSettings.from_options({"gpus_per_node": "2", "gpus": "2"}, env=env).gpus == 2
    with pytest.raises(ValueError, match="option gpus_per_node='2' contradicts gpus='1'"):
        SubmititSettings.from_options({"gpus_per_node": "2", "gpus": "1"}, env=env)
