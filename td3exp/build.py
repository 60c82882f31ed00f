"""Factories: the only place besides the entrypoint that reads the config. Each turns config values into the
explicit, typed arguments of one component."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import torch

from td3exp.agent import Actor, Critic, TD3Agent, TD3Params
from td3exp.config import Config
from td3exp.envs import make_car_racing
from td3exp.loggers import Logger, WandbMode
from td3exp.monitor import GradientMonitor, Thresholds
from td3exp.networks import ActorHead, NatureCNN, TwinQHead, to_device
from td3exp.replay import FrameReplay
from td3exp.rewards import RewardWeights
from td3exp.trainer import Schedule


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_env(cfg: Config, evaluation: bool = False) -> gym.Env:
    """Training env, or the evaluation env (no reward normalization: eval reports the native return)."""
    w = cfg.reward.weights
    return make_car_racing(
        frame_stack=cfg.env.frame_stack,
        image_size=cfg.env.image_size,
        action_repeat=cfg.env.action_repeat,
        max_episode_steps=cfg.env.max_episode_steps,
        target_speed=cfg.reward.target_speed,
        weights=RewardWeights(w.progress, w.smoothness, w.lane_centering, w.efficiency),
        normalize="none" if evaluation else cfg.reward.normalize,
        clip_range=cfg.reward.clip_range,
        gamma=cfg.agent.gamma,
    )


def build_agent(cfg: Config, obs_shape: tuple[int, ...], action_dim: int, device: torch.device) -> TD3Agent:
    channels, size = obs_shape[0], obs_shape[-1]
    features, hidden = cfg.encoder.features_dim, list(cfg.agent.hidden_dims)
    critic = Critic(NatureCNN(channels, size, features), TwinQHead(features, action_dim, hidden))
    shared = cfg.encoder.layout == "shared_detached"
    actor_encoder = critic.encoder if shared else NatureCNN(channels, size, features)
    actor = Actor(actor_encoder, ActorHead(features, action_dim, hidden), detach_features=shared)
    to_device(actor, device, channels_last=True)
    to_device(critic, device, channels_last=True)

    o = cfg.optim
    actor_groups = [{"params": actor.head.parameters(), "lr": o.actor_lr}]
    if not shared:
        actor_groups.append({"params": actor.encoder.parameters(), "lr": o.actor_cnn_lr})
    critic_groups = [
        {"params": critic.head.parameters(), "lr": o.critic_lr},
        {"params": critic.encoder.parameters(), "lr": o.critic_cnn_lr},
    ]
    # fused kernels skip a step on found_inf without a host sync (see TD3Agent._step)
    actor_opt = torch.optim.Adam(actor_groups, fused=True)
    critic_opt = torch.optim.Adam(critic_groups, fused=True)

    thresholds = {k: Thresholds(v.warning, v.critical) for k, v in cfg.monitor.thresholds.items()}
    monitor = GradientMonitor(thresholds, cfg.monitor.max_consecutive_nonfinite, device)
    a = cfg.agent
    params = TD3Params(
        gamma=a.gamma, tau=a.tau, policy_delay=a.policy_delay, target_noise=a.target_noise,
        noise_clip=a.noise_clip, exploration_noise=a.exploration_noise, start_steps=a.start_steps,
        actor_max_norm=cfg.clip.max_norm, critic_max_norm=cfg.clip.critic_max_norm,
    )
    return TD3Agent(actor, critic, actor_opt, critic_opt, monitor, params, action_dim, device,
                    seed=cfg.seed, channels_last=True)


def build_replay(cfg: Config, obs_shape: tuple[int, ...], action_dim: int, device: torch.device) -> FrameReplay:
    return FrameReplay(
        capacity=cfg.agent.buffer_size, frame_shape=tuple(obs_shape[1:]), frame_stack=obs_shape[0],
        action_dim=action_dim, batch_size=cfg.agent.batch_size, device=device, seed=cfg.seed,
    )


def build_logger(cfg: Config, run_dir: Path, config: dict[str, Any], default_name: str) -> Logger:
    w = cfg.logger.wandb
    return Logger(
        run_dir, config, wandb_mode=cast(WandbMode, w.mode), project=w.project, entity=w.entity, group=w.group,
        tags=list(w.tags), name=w.name or default_name,
    )


def build_schedule(cfg: Config) -> Schedule:
    return Schedule(
        total_steps=cfg.total_steps, start_steps=cfg.agent.start_steps, train_freq=cfg.agent.train_freq,
        log_every=cfg.logger.log_every, eval_every=cfg.eval.every, eval_episodes=cfg.eval.episodes,
    )
