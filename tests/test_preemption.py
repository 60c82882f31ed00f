"""Preemption under submitit: the job gets submitit's preemption signal (SIGUSR2, what SLURM sends before it preempts
or times out a job), writes its checkpoint, submitit requeues it, and the requeued job resumes from that checkpoint.
Real Hydra, real submitit (its local executor runs the same job path as SLURM), real CarRacing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .conftest import REPO, read_scalars

RUN = [
    "total_steps=140", "agent.start_steps=30", "agent.batch_size=16", "agent.buffer_size=400", "eval.every=70",
    "eval.episodes=1", "env.max_episode_steps=35", "logger.log_every=10", "checkpoint.every=20",
    "logger.wandb.mode=disabled", "logger.progress_bar=false",
]


def job_processes(marker: str) -> list[int]:
    """PIDs of submitit job processes (``python -m submitit.core._submit <folder>``) whose folder holds marker."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"submitit.core._submit" in cmdline and any(marker.encode() in part for part in cmdline):
            pids.append(int(proc.name))
    return pids


def test_preempted_submitit_job_checkpoints_is_requeued_and_resumes(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    env = {**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy"}
    sweeper = subprocess.Popen(
        [sys.executable, "-m", "td3exp", "--multirun", "hydra/launcher=local",
         f"hydra.sweep.dir={sweep}", "seed=0", *RUN],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 240
    while not list(sweep.glob("*/checkpoints/step_*")):  # preempt once the job has something to lose
        assert sweeper.poll() is None, sweeper.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.2)
    pids = job_processes(str(sweep))
    assert len(pids) == 1
    os.kill(pids[0], signal.SIGUSR2)
    out, err = sweeper.communicate(timeout=400)
    assert sweeper.returncode == 0, err[-3000:]

    logs = "".join(p.read_text() for p in sorted((sweep / ".submitit").rglob("*_log.*")))
    assert "stopped by SIGUSR2" in logs and "Requeued job" in logs and "resumed from" in logs, logs[-3000:]
    job_dir = next(sweep.glob("*/checkpoints")).parent
    scalars = read_scalars(job_dir)
    steps = [step for step, _ in scalars["loss/critic"]]
    assert steps == sorted(set(steps)) and steps[-1] == 140  # one stream, no duplicated steps, run completed
    assert scalars["eval/return"][-1][0] == 140
