"""Factories: the only place besides the entrypoint that reads the config. Each turns config values into the
explicit, typed arguments of one component."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch

from td3exp.agent import TD3Agent
from td3exp.clipping import AutoClip
from td3exp.config import CarlaEnvConfig, Config, ConfigError, GymnasiumEnvConfig
from td3exp.envs import make_car_racing, make_gymnasium_task
from td3exp.envs.vector import ParallelEnvs
from td3exp.loggers import Logger, WandbMode
from td3exp.measured_step import MeasuredStep
from td3exp.monitor import PIXEL_SATURATION_HINT, STATE_SATURATION_HINT, GradientMonitor, Thresholds
from td3exp.networks import Actor, ActorHead, Critic, Encoder, NatureCNN, TwinQHead, VectorInput, to_device
from td3exp.replay import FrameReplay
from td3exp.rewards import RewardWeights
from td3exp.schedule import Schedule, updates_per_step
from td3exp.update_measurement import UpdateMeasurement


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
    normalize = "none" if evaluation else cfg.reward.normalize
    if isinstance(cfg.env, GymnasiumEnvConfig):
        return partial(make_gymnasium_task, cfg.env.id, cfg.env.max_episode_steps, cfg.env.action_repeat,
                       normalize=normalize, clip_range=cfg.reward.clip_range, gamma=cfg.agent.gamma)
    w = cfg.reward.weights
    assert w is not None  # validate() requires weights for the pixel envs
    weights = RewardWeights(w.progress, w.smoothness, w.lane_centering, w.efficiency)
    if cfg.env.name == "carla":
        from td3exp.envs.carla.factory import make_carla  # imports carla: only when env=carla is chosen

        assert isinstance(cfg.env, CarlaEnvConfig)  # validate() checks that env.name matches the group
        return partial(make_carla, cfg.env, weights, target_speed=cfg.reward.target_speed, normalize=normalize,
                       clip_range=cfg.reward.clip_range, gamma=cfg.agent.gamma, seed=cfg.seed, env_index=env_index)
    e = cfg.env
    assert e.max_episode_steps is not None  # validate() requires it for the pixel envs
    return partial(make_car_racing, frame_stack=e.frame_stack, image_size=e.image_size, action_repeat=e.action_repeat,
                   max_episode_steps=e.max_episode_steps, target_speed=cfg.reward.target_speed, weights=weights,
                   normalize=normalize, clip_range=cfg.reward.clip_range, gamma=cfg.agent.gamma)


def build_env(cfg: Config, evaluation: bool = False, env_index: int = 0) -> gym.Env:
    """One training (or evaluation) env, built here."""
    return env_maker(cfg, evaluation, env_index)()


def env_spaces(cfg: Config) -> tuple[gym.Space, gym.Space]:
    """The (observation, action) spaces of the training env, without starting a simulator (a gymnasium task is
    built once here to read them: cheap, and a wrong env.id fails here in one line)."""
    e = cfg.env
    if isinstance(e, GymnasiumEnvConfig):
        env = make_gymnasium_task(e.id, e.max_episode_steps, e.action_repeat, "none", 1.0, cfg.agent.gamma)
        env.close()
        return env.observation_space, env.action_space
    return (gym.spaces.Box(0, 255, (e.frame_stack, e.image_size, e.image_size), np.uint8),
            gym.spaces.Box(-1.0, 1.0, (2,), np.float32))  # uint8 frame stacks, [steer, throttle_brake]


def build_envs(cfg: Config) -> ParallelEnvs:
    """``env.num_envs`` paired training and evaluation envs (``env.vector``: a process each, or all in this one)."""
    indices, e = range(cfg.env.num_envs), cfg.env
    spaces = env_spaces(cfg)
    return ParallelEnvs.make([env_maker(cfg, False, i) for i in indices], [env_maker(cfg, True, i) for i in indices],
                             e.vector, spaces)


def build_agent(
    cfg: Config, obs_shape: tuple[int, ...], action_dim: int, device: torch.device, measure: bool = True
) -> TD3Agent:
    """``measure=False`` builds the agent without its measuring (benchmarks price monitoring with it)."""
    e = cfg.encoder
    hidden, kaiming = list(cfg.agent.hidden_dims), e.head_init == "kaiming"
    vector = e.layout == "mlp"  # a state vector: no CNN, the heads see the observation

    def encoder() -> Encoder:
        if vector:
            return VectorInput(obs_shape[0])
        return NatureCNN(obs_shape[0], obs_shape[-1], e.features_dim, e.pixel_scale, e.trunk_norm)

    critic_encoder = encoder()
    features = critic_encoder.features_dim
    critic = Critic(critic_encoder, TwinQHead(features, action_dim, hidden, kaiming))
    shared = e.layout == "shared_detached"
    head = ActorHead(features, action_dim, hidden, bounded=cfg.agent.actor_head == "tanh", kaiming=kaiming)
    actor = Actor(critic.encoder if shared else encoder(), head, detach_features=shared)
    channels_last = not vector  # faster convs; a 2-D batch has no channels to reorder
    to_device(actor, device, channels_last)
    to_device(critic, device, channels_last)
    cnn = not vector

    o = cfg.optim
    actor_groups: list[dict[str, Any]] = [{"params": actor.head.parameters(), "lr": o.actor_lr}]
    if cnn and not shared:
        actor_groups.append({"params": actor.encoder.parameters(), "lr": o.actor_cnn_lr})
    critic_groups: list[dict[str, Any]] = [{"params": critic.head.parameters(), "lr": o.critic_lr}]
    if cnn:
        critic_groups.append({"params": critic.encoder.parameters(), "lr": o.critic_cnn_lr})
    m = cfg.monitor
    thresholds = {k: Thresholds(v.warning, v.critical) for k, v in m.thresholds.items()}
    saturation = Thresholds(m.saturation.warning, m.saturation.critical)
    hint = PIXEL_SATURATION_HINT if cnn else STATE_SATURATION_HINT
    monitor = GradientMonitor(thresholds, m.max_consecutive_nonfinite, device, saturation, hint)
    c = cfg.clip
    actor_clip = AutoClip(c.auto_percentile, c.auto_history, device) if c.auto_percentile is not None else c.max_norm
    # measured modules: under a shared encoder the actor has no CNN of its own, under encoder=mlp nobody has one
    actor_modules: dict[str, torch.nn.Module] = {"actor": actor.head}
    critic_modules: dict[str, torch.nn.Module] = {"critic": critic.head}
    if cnn and not shared:
        actor_modules["actor_cnn"] = actor.encoder
    if cnn:
        critic_modules["critic_cnn"] = critic.encoder
    check_bf16_on_cpu(cfg.agent.precision, device)
    graph = cfg.agent.cuda_graph
    if graph and device.type != "cuda":
        raise ConfigError(f"agent.cuda_graph=true needs a CUDA device (this run resolved device={device}); "
                          "set agent.cuda_graph=false")
    actor_step = MeasuredStep(build_optimizer(o.name, actor_groups, o.momentum, graph), actor_modules, actor_clip,
                              monitor, measure)
    critic_step = MeasuredStep(build_optimizer(o.name, critic_groups, o.momentum, graph), critic_modules,
                               c.critic_max_norm, monitor, measure)
    measurement = UpdateMeasurement(actor_step, critic_step, monitor, learned_features=cnn, shared_encoder=shared,
                                    bounded_actor=head.bounded, measure=measure,
                                    plant_nonfinite_at=cfg.debug.inject_nonfinite_at)
    return TD3Agent(actor, critic, cfg.agent, measurement, device, seed=cfg.seed, channels_last=channels_last,
                    cuda_graph=graph)


# CPU features with bf16 arithmetic in hardware (x86: AVX512_BF16, AMX; ARM: BF16, SVE BF16); without one torch
# emulates bf16 in fp32 and bf16 is slower than fp32, not faster
NATIVE_BF16 = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")


def check_bf16_on_cpu(precision: str, device: torch.device) -> None:
    """agent.precision=bf16 on a CPU without native bf16 is a config error (one line naming the CPU's capability)."""
    if precision != "bf16" or device.type != "cpu":
        return
    capabilities = torch.cpu.get_capabilities()
    if not any(capabilities.get(feature) for feature in NATIVE_BF16):
        raise ConfigError(f"agent.precision=bf16 on a CPU without native bf16 (capability "
                          f"{torch.backends.cpu.get_cpu_capability()}, no AVX512_BF16 or AMX): torch would emulate "
                          "it, slower than fp32; set agent.precision=fp32 or device=cuda")


def build_optimizer(
    name: str, groups: list[dict[str, Any]], momentum: float, capturable: bool = False
) -> torch.optim.Optimizer:
    """Fused kernels skip a step on found_inf without a host sync (see measured_step.skip_step_unless);
    ``capturable`` keeps Adam's step count on the device, as a CUDA graph needs (SGD has no step count)."""
    if name == "sgd":
        return torch.optim.SGD(groups, momentum=momentum, fused=True)
    return torch.optim.Adam(groups, fused=True, capturable=capturable)


def build_replay(cfg: Config, obs_shape: tuple[int, ...], action_dim: int, device: torch.device) -> FrameReplay:
    """Frame stacks rebuilt from one stored uint8 frame per step, or float32 state vectors stored once each."""
    stacked = cfg.encoder.layout != "mlp"
    return FrameReplay(
        capacity=cfg.agent.buffer_size, frame_shape=tuple(obs_shape[1:] if stacked else obs_shape),
        frame_stack=obs_shape[0] if stacked else 1, action_dim=action_dim, batch_size=cfg.agent.batch_size,
        device=device, seed=cfg.seed, streams=cfg.env.num_envs,  # one frame stream per env
        stacked=stacked, frame_dtype=np.uint8 if stacked else np.float32,
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
    return Schedule(
        total_steps=cfg.total_steps, start_steps=cfg.agent.start_steps, log_every=cfg.logger.log_every,
        eval_every=cfg.eval.every, eval_episodes=cfg.eval.episodes, checkpoint_every=cfg.checkpoint.every,
        updates_per_step=updates_per_step(cfg.agent.utd_ratio, cfg.agent.train_freq),
        every_update=cfg.logger.every_update,
    )
