"""Factories: the only place besides the entrypoint that reads the config. Each turns config values into the
explicit, typed arguments of one component."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch

from td3exp.agent import TD3Agent
from td3exp.clipping import AutoClip
from td3exp.config import CarlaEnvConfig, Config, ConfigError
from td3exp.envs import make_car_racing
from td3exp.envs.vector import ParallelEnvs
from td3exp.loggers import Logger, WandbMode
from td3exp.measured_step import MeasuredStep
from td3exp.monitor import GradientMonitor, Thresholds
from td3exp.networks import Actor, ActorHead, Critic, NatureCNN, TwinQHead, to_device
from td3exp.replay import FrameReplay
from td3exp.rewards import RewardWeights
from td3exp.schedule import Schedule


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def env_maker(cfg: Config, evaluation: bool = False, env_index: int = 0) -> Callable[[], gym.Env]:
    """A picklable maker of the training env, or of the evaluation env (no reward normalization: eval reports the
    native return); an env process builds its env with it, importing only the env modules.

    ``env_index`` numbers parallel envs: under env=carla each index uses its own server (env.port + index *
    env.port_step); the training and evaluation env of one index share it.
    """
    w = cfg.reward.weights
    weights = RewardWeights(w.progress, w.smoothness, w.lane_centering, w.efficiency)
    normalize = "none" if evaluation else cfg.reward.normalize
    if cfg.env.name == "carla":
        from td3exp.envs.carla.factory import make_carla  # imports carla: only when env=carla is chosen

        assert isinstance(cfg.env, CarlaEnvConfig)  # validate() checks that env.name matches the group
        return partial(make_carla, cfg.env, weights, target_speed=cfg.reward.target_speed, normalize=normalize,
                       clip_range=cfg.reward.clip_range, gamma=cfg.agent.gamma, seed=cfg.seed, env_index=env_index)
    e = cfg.env
    return partial(make_car_racing, frame_stack=e.frame_stack, image_size=e.image_size, action_repeat=e.action_repeat,
                   max_episode_steps=e.max_episode_steps, target_speed=cfg.reward.target_speed, weights=weights,
                   normalize=normalize, clip_range=cfg.reward.clip_range, gamma=cfg.agent.gamma)


def build_env(cfg: Config, evaluation: bool = False, env_index: int = 0) -> gym.Env:
    """One training (or evaluation) env, built here."""
    return env_maker(cfg, evaluation, env_index)()


def build_envs(cfg: Config) -> ParallelEnvs:
    """``env.num_envs`` paired training and evaluation envs (``env.vector``: a process each, or all in this one)."""
    indices, e = range(cfg.env.num_envs), cfg.env
    spaces = (gym.spaces.Box(0, 255, (e.frame_stack, e.image_size, e.image_size), np.uint8),
              gym.spaces.Box(-1.0, 1.0, (2,), np.float32))  # uint8 frame stacks, [steer, throttle_brake]
    return ParallelEnvs.make([env_maker(cfg, False, i) for i in indices], [env_maker(cfg, True, i) for i in indices],
                             e.vector, spaces)


def build_agent(
    cfg: Config, obs_shape: tuple[int, ...], action_dim: int, device: torch.device, measure: bool = True
) -> TD3Agent:
    """``measure=False`` builds the agent without its measuring (benchmarks price monitoring with it)."""
    e = cfg.encoder
    features, hidden = e.features_dim, list(cfg.agent.hidden_dims)

    def encoder() -> NatureCNN:
        return NatureCNN(obs_shape[0], obs_shape[-1], features, e.pixel_scale, e.trunk_norm)

    critic = Critic(encoder(), TwinQHead(features, action_dim, hidden))
    shared = e.layout == "shared_detached"
    head = ActorHead(features, action_dim, hidden, bounded=cfg.agent.actor_head == "tanh")
    actor = Actor(critic.encoder if shared else encoder(), head, detach_features=shared)
    to_device(actor, device, channels_last=True)
    to_device(critic, device, channels_last=True)

    o = cfg.optim
    actor_groups: list[dict[str, Any]] = [{"params": actor.head.parameters(), "lr": o.actor_lr}]
    if not shared:
        actor_groups.append({"params": actor.encoder.parameters(), "lr": o.actor_cnn_lr})
    critic_groups = [
        {"params": critic.head.parameters(), "lr": o.critic_lr},
        {"params": critic.encoder.parameters(), "lr": o.critic_cnn_lr},
    ]
    m = cfg.monitor
    thresholds = {k: Thresholds(v.warning, v.critical) for k, v in m.thresholds.items()}
    saturation = Thresholds(m.saturation.warning, m.saturation.critical)
    monitor = GradientMonitor(thresholds, m.max_consecutive_nonfinite, device, saturation)
    c = cfg.clip
    actor_clip = AutoClip(c.auto_percentile, c.auto_history, device) if c.auto_percentile is not None else c.max_norm
    # actor-side modules; under a shared encoder the actor has no CNN of its own
    actor_modules: dict[str, torch.nn.Module] = {"actor": actor.head}
    if not shared:
        actor_modules["actor_cnn"] = actor.encoder
    graph = cfg.agent.cuda_graph
    if graph and device.type != "cuda":
        raise ConfigError(f"agent.cuda_graph=true needs a CUDA device (this run resolved device={device}); "
                          "set agent.cuda_graph=false")
    actor_step = MeasuredStep(build_optimizer(o.name, actor_groups, o.momentum, graph), actor_modules, actor_clip,
                              monitor, measure)
    critic_step = MeasuredStep(build_optimizer(o.name, critic_groups, o.momentum, graph),
                               {"critic": critic.head, "critic_cnn": critic.encoder}, c.critic_max_norm, monitor,
                               measure)
    return TD3Agent(actor, critic, actor_step, critic_step, monitor, cfg.agent, action_dim, device, seed=cfg.seed,
                    channels_last=True, inject_nonfinite_at=cfg.debug.inject_nonfinite_at, cuda_graph=graph,
                    measure=measure)


def build_optimizer(
    name: str, groups: list[dict[str, Any]], momentum: float, capturable: bool = False
) -> torch.optim.Optimizer:
    """Fused kernels skip a step on found_inf without a host sync (see measured_step.skip_step_unless);
    ``capturable`` keeps Adam's step count on the device, as a CUDA graph needs (SGD has no step count)."""
    if name == "sgd":
        return torch.optim.SGD(groups, momentum=momentum, fused=True)
    return torch.optim.Adam(groups, fused=True, capturable=capturable)


def build_replay(cfg: Config, obs_shape: tuple[int, ...], action_dim: int, device: torch.device) -> FrameReplay:
    return FrameReplay(
        capacity=cfg.agent.buffer_size, frame_shape=tuple(obs_shape[1:]), frame_stack=obs_shape[0],
        action_dim=action_dim, batch_size=cfg.agent.batch_size, device=device, seed=cfg.seed,
        streams=cfg.env.num_envs,  # one frame stream per env
    )


def build_logger(
    cfg: Config, run_dir: Path, config: dict[str, Any], default_name: str, job_type: str = "train",
    default_group: str | None = None, resume_step: int | None = None, wandb_id: str | None = None,
) -> Logger:
    """``resume_step`` / ``wandb_id``: continue the logs of a run resumed from its checkpoint at that step."""
    w = cfg.logger.wandb
    return Logger(
        run_dir, config, wandb_mode=cast(WandbMode, w.mode), project=w.project, entity=w.entity,
        group=w.group or default_group, tags=list(w.tags), name=w.name or default_name, job_type=job_type,
        resume_step=resume_step, wandb_id=wandb_id,
    )


def build_schedule(cfg: Config) -> Schedule:
    # an exact fraction: 0.1 updates per step must give one update every 10 steps, not drift with float rounding
    utd = Fraction(cfg.agent.utd_ratio).limit_denominator(1_000_000)
    return Schedule(
        total_steps=cfg.total_steps, start_steps=cfg.agent.start_steps, log_every=cfg.logger.log_every,
        eval_every=cfg.eval.every, eval_episodes=cfg.eval.episodes, checkpoint_every=cfg.checkpoint.every,
        updates_per_step=utd / cfg.agent.train_freq, every_update=cfg.logger.every_update,
    )
