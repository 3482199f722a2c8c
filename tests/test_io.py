import errno
import os
import subprocess
import sys

import pytest

from nnactive_core.io import (
    KILL_ENV,
    DiskFullError,
    JsonFileError,
    UnsafePathError,
    atomic_write_json,
    atomic_write_text,
    atomic_write_with,
    contained,
    kill_point,
    plain_name,
    read_json,
    remove_temp_files,
    resolves_inside,
    share_by_umask,
)


def test_replaces_content_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "state.json"
    atomic_write_json(target, {"loop": 1})
    atomic_write_json(target, {"loop": 2})
    assert target.read_text().strip().endswith("}")
    assert '"loop": 2' in target.read_text()
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "config.json"
    atomic_write_text(target, "old")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write_with(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_permissions_follow_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(previous)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_read_json_names_the_file_for_every_failure(tmp_path):
    path = tmp_path / "state.json"
    with pytest.raises(JsonFileError, match=r"state\.json: run setup first"):
        read_json(path, missing="run setup first")
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(JsonFileError, match=r"state\.json: unreadable"):
        read_json(path)
    path.write_text("{")
    with pytest.raises(JsonFileError, match=r"state\.json: not valid JSON"):
        read_json(path)
    path.write_text("[1]")
    assert read_json(path) == [1]
    with pytest.raises(JsonFileError, match=r"state\.json: expected a JSON object") as caught:
        read_json(path, expect=dict)
    assert caught.value.path == path and isinstance(caught.value, ValueError)


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/etc/passwd", "", "a\\..\\b", "a\0b", ".."])
def test_names_that_would_leave_their_folder_are_refused(tmp_path, name):
    with pytest.raises(UnsafePathError, match="loop_001.json patch #2"):
        contained(tmp_path, name, source="loop_001.json patch #2")


def test_names_inside_their_folder_are_joined(tmp_path):
    assert contained(tmp_path, "labels/case.nii.gz", source="manifest") == tmp_path / "labels" / "case.nii.gz"
    assert plain_name("case_001.nii.gz", source="patch") == "case_001.nii.gz"
    for name in ("labels/case.nii.gz", ".", 3):
        with pytest.raises(UnsafePathError, match="not a plain file name"):
            plain_name(name, source="patch")


def test_links_are_judged_by_their_target(tmp_path):
    folder, outside = tmp_path / "import", tmp_path / "secret.nii.gz"
    folder.mkdir()
    outside.write_text("secret")
    (folder / "inside.nii.gz").write_text("x")
    (folder / "out.nii.gz").symlink_to(outside)
    (folder / "in.nii.gz").symlink_to(folder / "inside.nii.gz")
    assert resolves_inside(folder, folder / "in.nii.gz")
    assert not resolves_inside(folder, folder / "out.nii.gz")


def test_temporary_files_of_killed_writes_are_removed_and_nothing_else(tmp_path):
    results, elsewhere = tmp_path / "results", tmp_path / "elsewhere"
    (results / "loop_001").mkdir(parents=True)
    elsewhere.mkdir()
    left = [results / ".state.json.abcd_123.tmp", results / "loop_001" / ".case.nii.gz.x1y2z3w4.tmp.nii.gz"]
    kept = [
        results / "state.json",
        results / ".hidden",
        results / "notes.tmp",
        elsewhere / ".a.json.abcd1234.tmp",
    ]
    for path in left + kept:
        path.write_text("x")
    (results / "linked").symlink_to(elsewhere)
    assert sorted(remove_temp_files([results])) == sorted(left)
    assert all(path.exists() for path in kept)
    assert not any(path.exists() for path in left)


def test_a_full_disk_is_named_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "checkpoint_final.pth"

    def full(tmp):
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError) as caught:
        atomic_write_with(target, full)
    assert str(caught.value) == f"no space left on device while writing {target}"
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_behind_a_library_error_is_named(tmp_path, monkeypatch):
    """torch reports a full disk as ``RuntimeError: ... unexpected pos``; the free space tells."""
    import nnactive_core.io as io_module

    monkeypatch.setattr(io_module, "FULL_DISK_BYTES", 1 << 62)

    def torch_like(tmp):
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 64 vs 0")

    with pytest.raises(DiskFullError, match="no space left on device while writing"):
        atomic_write_with(tmp_path / "checkpoint_final.pth", torch_like)
    monkeypatch.setattr(io_module, "FULL_DISK_BYTES", 0)
    with pytest.raises(RuntimeError, match="unexpected pos"):
        atomic_write_with(tmp_path / "checkpoint_final.pth", torch_like)


def test_shared_folders_follow_the_umask(tmp_path):
    folder = tmp_path / "stored"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "labels.nii.gz").write_text("x")
    folder.chmod(0o700)
    previous = os.umask(0o022)
    try:
        share_by_umask(folder)
    finally:
        os.umask(previous)
    assert folder.stat().st_mode & 0o777 == 0o755
    assert (folder / "sub" / "labels.nii.gz").stat().st_mode & 0o777 == 0o644


def test_kill_point_only_fires_for_its_name(monkeypatch):
    monkeypatch.setenv(KILL_ENV, "train:0:1:1")
    kill_point("train:0:1:2")  # another point: nothing happens
    monkeypatch.delenv(KILL_ENV)
    kill_point("train:0:1:1")


def test_an_atomic_write_killed_mid_way_leaves_only_its_temporary_file(tmp_path):
    target = tmp_path / "loop_001" / "costs.json"
    code = f"from nnactive_core.io import atomic_write_json; atomic_write_json({str(target)!r}, {{'a': 1}})"
    env = {**os.environ, KILL_ENV: "write:loop_001/costs.json"}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == -9
    assert not target.exists()
    assert remove_temp_files([tmp_path]) and not any(target.parent.iterdir())
