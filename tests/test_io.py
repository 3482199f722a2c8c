import os

import pytest

from nnactive_core.io import JsonFileError, atomic_write_json, atomic_write_text, atomic_write_with, read_json


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
