"""A tiny real training run on env=carla: the same agent, replay, trainer and metric names as CarRacing, with the
CARLA client replaced by the TEST DOUBLE in tests/carla_double/ (a CARLA server cannot run here)."""

from __future__ import annotations

from pathlib import Path

import torch
from omegaconf import OmegaConf

from td3exp import build
from td3exp.config import Config
from td3exp.envs.carla.factory import make_carla
from td3exp.rewards import RewardWeights
from td3exp.trainer import Trainer

from . import carla_double as double
from .conftest import TINY, compose_config, read_scalars


def test_training_on_carla_writes_the_same_metrics(tmp_path: Path) -> None:
    server = double.FakeServer(double.straight_map(3000.0), port=3900)
    overrides = [*TINY, "total_steps=46", "env.max_episode_steps=30", "env=carla", f"env.port={server.port}",
                 "encoder.features_dim=64", "agent.hidden_dims=[32,32]",
                 "env.timeout=0.3", "env.settle_ticks=2", "env.camera.width=64", "env.camera.height=48",
                 "logger.wandb.mode=disabled", "logger.progress_bar=false"]
    dict_cfg = compose_config(overrides)
    cfg: Config = OmegaConf.to_object(dict_cfg)  # type: ignore[assignment]
    w, r = cfg.reward.weights, cfg.reward

    def env(evaluation: bool):
        return make_carla(cfg.env, RewardWeights(w.progress, w.smoothness, w.lane_centering, w.efficiency),  # type: ignore[arg-type]
                          r.target_speed, "none" if evaluation else r.normalize, r.clip_range, cfg.agent.gamma,
                          cfg.seed, make_client=double.Client)

    train_env, eval_env = env(False), env(True)
    obs_shape = train_env.observation_space.shape
    assert obs_shape == (4, 84, 84)
    device = torch.device("cpu")
    agent = build.build_agent(cfg, obs_shape, 2, device)
    replay = build.build_replay(cfg, obs_shape, 2, device)
    logger = build.build_logger(cfg, tmp_path, OmegaConf.to_container(dict_cfg), "carla")  # type: ignore[arg-type]
    trainer = Trainer(train_env, eval_env, agent, replay, logger, build.build_schedule(cfg), cfg.seed,
                      show_progress=False)
    try:
        trainer.run()
    finally:
        logger.close()
        train_env.close()
        eval_env.close()
    scalars = read_scalars(tmp_path)
    for tag in ("grad/actor_cnn", "loss/critic", "q/q1", "episode/return", "reward/progress",
                "reward/lane_centering", "eval/return"):
        assert tag in scalars, f"{tag} missing from {sorted(scalars)}"
    assert trainer.num_updates > 0 and server.live() == [] and not server.settings.synchronous_mode
