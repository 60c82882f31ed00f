"""Exact resume: a run killed at random moments (SIGKILL, SIGTERM) and resumed logs the same metrics, bit for bit,
as the same run never interrupted, and ends with identical parameters.  Real CarRacing, real event files."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from .conftest import REPO, read_scalars, run_td3exp

# deterministic, short episodes (several resets, so the episode tape is exercised), checkpoints every 20 steps
RESUMABLE = [
    "total_steps=90", "agent.start_steps=30", "agent.batch_size=16", "agent.buffer_size=400", "eval.every=40",
    "eval.episodes=1", "env.max_episode_steps=35", "logger.log_every=10", "checkpoint.every=20",
    "deterministic=true", "logger.wandb.mode=disabled", "logger.progress_bar=false", "reward.normalize=running",
]


# two env processes: each env replays its own episode tape on resume (small networks keep it quick)
TWO_ENVS = [*RESUMABLE, "env.num_envs=2", "env.vector=async", "encoder.features_dim=64", "agent.hidden_dims=[32,32]"]

# a state-vector task (env=gymnasium, encoder=mlp): the replay stores float32 vectors, Pendulum's episodes are time
# limits only (truncations that bootstrap)
# (2,000 steps: its updates are so quick that a 90-step run is over before a signal 0-30% of its duration in lands)
STATE_TASK = [*(a for a in RESUMABLE if not a.startswith(("reward.", "total_steps", "checkpoint.", "eval.every"))),
              "env=gymnasium", "env.id=Pendulum-v1", "agent=fujimoto", "agent.start_steps=30",
              "reward.normalize=running", "total_steps=2000", "checkpoint.every=250", "eval.every=1000"]

# seeds the kill delays (as shares of the reference run's duration); a failure message names it, so
# TD3EXP_KILL_SEED=N pytest tests/test_resume.py draws the same delays again
KILL_SEED = int(os.environ.get("TD3EXP_KILL_SEED", "0"))


def start(run_dir: Path, args: list[str] = RESUMABLE) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy"}
    return subprocess.Popen([sys.executable, "-m", "td3exp", *args, f"hydra.run.dir={run_dir}"],
                            cwd=run_dir.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    started = time.perf_counter()
    result = run_td3exp([*RESUMABLE, f"hydra.run.dir={run_dir}"], cwd=run_dir.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, time.perf_counter() - started


@pytest.fixture(scope="module")
def reference_two_envs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    run_dir = tmp_path_factory.mktemp("reference_two_envs") / "run"
    started = time.perf_counter()
    result = run_td3exp([*TWO_ENVS, f"hydra.run.dir={run_dir}"], cwd=run_dir.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, time.perf_counter() - started


def test_killed_and_resumed_run_logs_the_same_metrics_bit_for_bit(reference, tmp_path: Path) -> None:
    kill_resume_and_compare(*reference, tmp_path / "run", RESUMABLE)


def test_killed_and_resumed_run_with_two_env_processes_logs_the_same_metrics_bit_for_bit(
    reference_two_envs, tmp_path: Path
) -> None:
    kill_resume_and_compare(*reference_two_envs, tmp_path / "run", TWO_ENVS)


def test_killed_and_resumed_state_task_logs_the_same_metrics_bit_for_bit(tmp_path: Path) -> None:
    reference_dir = tmp_path / "reference"
    started = time.perf_counter()
    result = run_td3exp([*STATE_TASK, f"hydra.run.dir={reference_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    kill_resume_and_compare(reference_dir, time.perf_counter() - started, tmp_path / "run", STATE_TASK)


def newest_checkpoint(run_dir: Path) -> str:
    """The newest checkpoint's name ("" before the first; names sort by step)."""
    return max((p.name for p in (run_dir / "checkpoints").glob("step_*")), default="")


def kill_resume_and_compare(reference_dir: Path, duration: float, run_dir: Path, args: list[str]) -> None:
    rng = random.Random(KILL_SEED)
    shares: list[float] = []  # each signal's delay after a new checkpoint, as a share of the reference duration

    def context() -> str:
        return f"(TD3EXP_KILL_SEED={KILL_SEED}: delays {', '.join(f'{s:.3f}' for s in shares)} x {duration:.1f} s)"

    # stop at random moments after each session wrote a new checkpoint (so every resume has something to resume
    # from), not only at checkpoint steps: a SIGTERM (checkpoint and exit 5), then SIGKILLs
    resumed = 0
    for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGKILL):
        before = newest_checkpoint(run_dir)
        process = start(run_dir, args)
        while process.poll() is None and newest_checkpoint(run_dir) <= before:
            time.sleep(0.05)
        shares.append(rng.uniform(0.0, 0.3))
        time.sleep(shares[-1] * duration)
        process.send_signal(sig)
        sent = time.perf_counter()
        out, err = process.communicate(timeout=120)
        resumed += "resumed from" in err
        if process.returncode == 0:
            break  # it finished before the signal: nothing left to interrupt
        if sig == signal.SIGTERM:
            assert process.returncode == 5, f"{context()}\n{err[-2000:]}"
            assert time.perf_counter() - sent < 30, context()
            last = err.strip().splitlines()[-1]
            assert "stopped by SIGTERM" in last and "run the same command to resume" in last, f"{context()} {last}"
        else:
            assert process.returncode == -signal.SIGKILL, f"{context()}\n{err[-2000:]}"
    process = start(run_dir, args)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, f"{context()}\n{err[-3000:]}"
    assert resumed + ("resumed from" in err) >= 2, f"the kills came too late to test a resume {context()}"

    expected, got = read_scalars(reference_dir), read_scalars(run_dir)
    assert expected.keys() == got.keys(), context()
    for tag, points in expected.items():
        assert got[tag] == points, f"{tag} differs after resume {context()}"  # steps and float32 values, no duplicates
    a = torch.load(reference_dir / "model.pt", weights_only=True)
    b = torch.load(run_dir / "model.pt", weights_only=True)
    for net in a:
        for key, tensor in a[net].items():
            assert torch.equal(tensor, b[net][key]), f"{net}.{key} {context()}"


def test_resume_with_another_config_exits_2_naming_the_keys(reference) -> None:
    run_dir, _ = reference
    result = run_td3exp([*RESUMABLE, f"hydra.run.dir={run_dir}", "agent.gamma=0.9", "optim.actor_lr=3e-4"],
                        cwd=run_dir.parent)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "agent.gamma, optim.actor_lr" in lines[0], result.stderr


def test_resume_of_a_finished_run_with_more_steps_continues_it(reference, tmp_path: Path) -> None:
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(reference[0], run_dir)
    result = run_td3exp([*RESUMABLE, f"resume={run_dir}", "total_steps=100"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from" in result.stderr and "step 90" in result.stderr
    steps = [s for s, _ in read_scalars(run_dir)["loss/critic"]]
    assert steps == sorted(set(steps)) and steps[-1] == 100  # no duplicated steps across the two sessions
