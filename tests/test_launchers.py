"""Multirun through the launcher presets in conf/hydra/launcher, with real Hydra, submitit and joblib."""

from __future__ import annotations

from pathlib import Path

import pytest

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
        # the offline run file stores the run record (group, job type, name, config) as protobuf strings
        record = run.read_bytes()
        assert sweep_dir.encode() in record and b"sweep" in record and clip.encode() in record
