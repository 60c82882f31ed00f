"""Multirun through the launcher presets in conf/hydra/launcher, with real Hydra, submitit and joblib."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wandb.proto import wandb_internal_pb2

from .conftest import TINY, run_td3exp
from .test_loggers import read_layout

QUICK = [*TINY, "total_steps=60", "eval.episodes=0", "logger.progress_bar=false"]


@pytest.mark.parametrize("launcher", ["parallel", "local"])
def test_launcher_preset_runs_every_job(launcher: str, tmp_path: Path) -> None:
    result = run_td3exp(["--multirun", f"hydra/launcher={launcher}", "seed=0,1", *QUICK,
                         "logger.wandb.mode=disabled"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = sorted(p.parent.parent.name for p in (tmp_path / "multirun").rglob("tb/events.out.tfevents.*"))
    assert [job.rsplit(",", 1)[-1] for job in jobs] == ["seed=0", "seed=1"]  # named by condition, not job number
    for job in jobs:  # every run opens TensorBoard's Custom Scalars dashboard with the standard panels
        assert [c.title for c in read_layout(next((tmp_path / "multirun").glob(f"*/*/{job}"))).category]


def test_each_sweep_job_is_its_own_wandb_run_in_the_sweep_group(tmp_path: Path) -> None:
    result = run_td3exp(["--multirun", "clip=none,norm1", *QUICK, "logger.wandb.mode=offline"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = sorted((tmp_path / "multirun").rglob("offline-run-*/run-*.wandb"))
    assert len(runs) == 2  # wandb.finish() in each job: no merged runs
    sweep_dir = next((tmp_path / "multirun").glob("*/*")).relative_to(tmp_path).as_posix()
    for run, clip in zip(runs, ("clip=none", "clip=norm1"), strict=True):
        record, config = run_record(run)
        assert record.run_group == sweep_dir and record.job_type == "sweep"
        assert record.display_name.startswith(clip) and config["condition"].startswith(clip)


def records(path: Path) -> Iterator[bytes]:
    """The records of a W&B transaction log (``run-*.wandb``): LevelDB's log format after a 7-byte header, 32 KiB
    blocks of chunks (crc32 4 bytes, length 2, type 1: full, first, middle or last piece of a record)."""
    raw, block, pos, pieces = path.read_bytes(), 32 * 1024, 7, b""
    while pos + 7 <= len(raw):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        pieces, pos = pieces + raw[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            yield pieces
            pieces = b""


def run_record(path: Path) -> tuple[Any, dict[str, Any]]:
    """The run's record (group, job type, name) and its config, as W&B stores them offline."""
    for data in records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "run":
            return record.run, {item.key: json.loads(item.value_json) for item in record.run.config.update}
    raise AssertionError(f"no run record in {path}")
