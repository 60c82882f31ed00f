"""How a run ends when something stops it at the end of a vector step: a simulator lost during an evaluation, a stop
signal during the final log or checkpoint.  A real trainer, agent and replay on a real gymnasium task (Pendulum, so
it takes a second); the lost simulator is a wrapper raising what a CARLA env raises when it gives up reconnecting."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from td3exp import build
from td3exp.config import Config
from td3exp.envs import make_gymnasium_task
from td3exp.envs.errors import SimulatorUnavailable
from td3exp.envs.vector import ParallelEnvs
from td3exp.loggers import Logger
from td3exp.signals import Interrupted, StopSignals
from td3exp.trainer import Trainer

from .conftest import compose_config

# evaluation and checkpoint on the same cadence, as in the defaults
RUN = ["env=gymnasium", "env.id=Pendulum-v1", "env.max_episode_steps=10", "agent=fujimoto",
       "agent.hidden_dims=[16,16]", "agent.batch_size=8", "agent.buffer_size=200", "agent.start_steps=10",
       "total_steps=40", "eval.every=20", "checkpoint.every=20", "eval.episodes=1", "logger.log_every=10",
       "logger.wandb.mode=disabled", "logger.progress_bar=false"]


class LosesItsSimulator(gym.Wrapper):
    """STAND-IN for an env whose simulator is gone for good (CARLA after ``env.max_reconnects``): every step
    raises ``SimulatorUnavailable``."""

    def step(self, action: Any) -> Any:
        raise SimulatorUnavailable("lost the simulator at 127.0.0.1:2000 and 3 reconnect attempts failed")


def pendulum(lost: bool = False) -> gym.Env:
    env = make_gymnasium_task("Pendulum-v1", 10, 1, "none", 10.0, 0.99)
    return LosesItsSimulator(env) if lost else env


class Run:
    """A trainer with its checkpoints recorded (step, and whether the step's evaluation is still to run)."""

    def __init__(self, tmp_path: Path, eval_loses_simulator: bool = False) -> None:
        cfg: Config = OmegaConf.to_object(compose_config(RUN))  # type: ignore[assignment]
        self.envs = ParallelEnvs.make([pendulum], [lambda: pendulum(eval_loses_simulator)], "sync")
        obs_shape = self.envs.single_observation_space.shape
        assert obs_shape is not None
        device = torch.device("cpu")
        agent = build.build_agent(cfg, obs_shape, 1, device)
        replay = build.build_replay(cfg, obs_shape, 1, device)
        self.logger = Logger(tmp_path, {})
        self.stop = StopSignals()
        self.checkpoints: list[tuple[int, bool]] = []
        self.signal_at_checkpoint: int | None = None
        self.signal_at_log: int | None = None
        self.trainer = Trainer(self.envs, None, agent, replay, self.logger, build.build_schedule(cfg), cfg.seed,
                               show_progress=False, checkpoint=self.checkpoint, stop=self.stop, on_log=self.on_log)

    def checkpoint(self, step: int) -> str:
        self.checkpoints.append((step, self.trainer.state_dict()["evaluation_pending"]))
        if step == self.signal_at_checkpoint:
            self.stop.received = signal.SIGTERM
        return f"step_{step}"

    def on_log(self, step: int, latest: dict[str, float]) -> None:
        if step == self.signal_at_log:
            self.stop.received = signal.SIGTERM

    def run(self) -> float:
        try:
            return self.trainer.run()
        finally:
            self.logger.close()
            self.envs.close()


def test_a_simulator_lost_during_an_evaluation_writes_a_checkpoint_that_evaluates_again(tmp_path: Path) -> None:
    run = Run(tmp_path, eval_loses_simulator=True)
    with pytest.raises(SimulatorUnavailable, match="reconnect attempts failed"):
        run.run()
    # the interval's learning is kept; the resumed run runs step 20's evaluation, log and checkpoint again
    assert run.checkpoints == [(20, True)]


@pytest.mark.parametrize("where", ["final log", "final checkpoint"])
def test_a_stop_signal_during_the_final_log_or_checkpoint_leaves_a_finished_run(tmp_path: Path, where: str) -> None:
    run = Run(tmp_path)
    if where == "final log":
        run.signal_at_log = 40
    else:
        run.signal_at_checkpoint = 40
    result = run.run()  # no Interrupted: nothing is left to resume
    assert np.isfinite(result) and run.trainer.step == 40
    assert run.checkpoints == [(20, False), (40, False)]


def test_a_stop_signal_before_the_end_still_stops_after_its_checkpoint(tmp_path: Path) -> None:
    run = Run(tmp_path)
    run.signal_at_checkpoint = 20
    with pytest.raises(Interrupted, match="stopped by SIGTERM at step 20 with checkpoint step_20"):
        run.run()
    assert run.checkpoints == [(20, False)]


def test_the_loop_and_the_entrypoint_import_no_simulator_package() -> None:
    """The trainer, the evaluation and the entrypoint catch the env-agnostic ``SimulatorUnavailable``
    (td3exp/envs/errors.py), which the CARLA env raises as its own."""
    import subprocess
    import sys

    from .conftest import REPO

    code = ("import sys, td3exp.app, td3exp.trainer, td3exp.evaluation, td3exp.envs.vector; "
            "print(sorted(m for m in sys.modules if m.startswith('td3exp.envs.carla')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr[-2000:]
    from td3exp.envs.carla import errors as carla_errors

    assert carla_errors.SimulatorUnavailable is SimulatorUnavailable
