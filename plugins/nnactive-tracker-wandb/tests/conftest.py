"""Every test runs wandb offline: nothing leaves the machine, and what a run logs is read back from
the files it writes (the ``offline_runs`` fixture).

What an offline wandb run wrote, read back from its ``run-<id>.wandb`` file for the tests.

The file is wandb's record log in LevelDB's log format: a 7-byte header (``:W&B``, magic, version),
then 32 KiB blocks of chunks, each a 7-byte header (checksum, little-endian length, type) and its
bytes; a record too long for a block is split into first, middle and last chunks, and a block's
tail shorter than a header is padding. Every record is a ``wandb.proto.wandb_internal_pb2.Record``.
wandb no longer ships a Python reader (``wandb sync`` reads it in its Go core), hence this one.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import attrs
import pytest

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def raw_records(path: Path) -> list[bytes]:
    data = Path(path).read_bytes()
    assert data.startswith(HEADER), f"{path} is not a wandb record log"
    records, parts, position = [], [], len(HEADER)
    while position + CHUNK_HEADER.size <= len(data):
        if BLOCK - position % BLOCK < CHUNK_HEADER.size:
            position += BLOCK - position % BLOCK
            continue
        _, length, kind = CHUNK_HEADER.unpack_from(data, position)
        position += CHUNK_HEADER.size
        chunk = data[position : position + length]
        position += length
        if kind == FULL:
            records.append(chunk)
        elif kind == FIRST:
            parts = [chunk]
        elif kind == MIDDLE:
            parts.append(chunk)
        elif kind == LAST:
            records.append(b"".join([*parts, chunk]))
            parts = []
        elif kind == 0 and length == 0:
            break  # zero padding at the end of the last block
        else:
            raise AssertionError(f"{path}: unknown chunk type {kind} at byte {position}")
    return records


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


@attrs.frozen(kw_only=True)
class OfflineRun:
    """The run record (id, name, group, tags, config), the history rows, the summary updates and the
    exit code, decoded from JSON as wandb stored them."""

    folder: Path
    run_id: str
    project: str
    name: str
    group: str
    job_type: str
    tags: tuple[str, ...]
    config: dict
    history: list[dict]
    summary: dict
    exit_code: int | None

    @classmethod
    def read(cls, folder: Path) -> OfflineRun:
        from wandb.proto import wandb_internal_pb2

        (log,) = Path(folder).glob("run-*.wandb")
        run, config, history, summary, exit_code = None, {}, [], {}, None
        for data in raw_records(log):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(data)
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run = record.run
                config.update({_key(i): json.loads(i.value_json) for i in run.config.update})
            elif kind == "config":
                config.update({_key(i): json.loads(i.value_json) for i in record.config.update})
            elif kind == "history":
                history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
            elif kind == "summary":
                summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
            elif kind == "exit":
                exit_code = record.exit.exit_code
        assert run is not None, f"{log} has no run record"
        return cls(
            folder=Path(folder),
            run_id=run.run_id,
            project=run.project,
            name=run.display_name,
            group=run.run_group,
            job_type=run.job_type,
            tags=tuple(run.tags),
            config=config,
            history=history,
            summary=summary,
            exit_code=exit_code,
        )

    def rows_with(self, key: str) -> list[dict]:
        return [row for row in self.history if key in row]


def offline_runs(wandb_dir: Path) -> list[OfflineRun]:
    """Every offline run under a ``wandb`` folder, oldest first, read as the process would leave them
    at exit.

    ``run.finish()`` returns before wandb-core's writer has flushed the record log (its debug log says
    "stream: all finished" before the file is complete), so a file read right away may lack even the
    run record. ``wandb.teardown()`` is what the exit hook runs: it shuts the service down and waits
    for its writers."""
    import wandb

    wandb.teardown()
    return [OfflineRun.read(folder) for folder in sorted(Path(wandb_dir).glob("offline-run-*"))]


@pytest.fixture(name="offline_runs")
def offline_runs_fixture():
    """``offline_runs(wandb_dir)``: every offline run under a ``wandb`` folder, oldest first."""
    return offline_runs


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("WANDB_DIR", "WANDB_API_KEY", "WANDB_ENTITY", "WANDB_PROJECT", "NNACTIVE_WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    # wandb's settings, credentials and caches stay in the test's folder, not the user's home
    for name, folder in (
        ("WANDB_CONFIG_DIR", "config"),
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_DATA_DIR", "data"),
    ):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / folder))
