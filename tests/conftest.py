"""Shared helpers: real Hydra composition, a tiny real training command, TensorBoard event reading."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("WANDB_MODE", "offline")

# a real run of the entrypoint that finishes in seconds: small batch, short episodes, one eval episode
TINY = [
    "total_steps=120", "agent.start_steps=40", "agent.batch_size=16", "agent.buffer_size=500",
    "eval.every=100", "eval.episodes=1", "env.max_episode_steps=50", "logger.log_every=30",
]


def compose_config(overrides: list[str] | None = None):
    from td3exp.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=overrides or [])


def run_td3exp(args: list[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None,
               ) -> subprocess.CompletedProcess:
    env = {**(os.environ if env is None else env), "PYTHONPATH": str(REPO), "SDL_VIDEODRIVER": "dummy"}
    return subprocess.run(
        [sys.executable, "-m", "td3exp", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """All scalars of a run, read back with TensorBoard's own reader."""
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real tiny training run (W&B offline) shared by the smoke tests."""
    run_dir = tmp_path_factory.mktemp("tiny_run")
    result = run_td3exp([*TINY, f"hydra.run.dir={run_dir}", "logger.wandb.mode=offline"], cwd=run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir
