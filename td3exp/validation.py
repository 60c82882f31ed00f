"""Validation of a composed config: the first value that is wrong, named with what is allowed, as one line
(ConfigError, exit code 2).  The schema itself is in td3exp/config.py."""

from __future__ import annotations

from td3exp.config import (
    MODULES,
    CarlaEnvConfig,
    Config,
    ConfigError,
    EnvConfig,
    GymnasiumEnvConfig,
    MonitorConfig,
    RewardConfig,
)
from td3exp.schedule import Schedule, updates_per_step
from td3exp.self_gate import STOP_ON

ENVS = ("car_racing", "carla", "gymnasium")
PIXEL_ENVS = ("car_racing", "carla")
TOWNS = ("Town01", "Town02", "Town03", "Town04", "Town05", "Town06", "Town07")
WEATHERS = (  # carla.WeatherParameters presets of CARLA 0.9.16
    "ClearNight", "ClearNoon", "ClearSunset", "CloudyNight", "CloudyNoon", "CloudySunset", "Default", "DustStorm",
    "HardRainNight", "HardRainNoon", "HardRainSunset", "MidRainSunset", "MidRainyNight", "MidRainyNoon",
    "SoftRainNight", "SoftRainNoon", "SoftRainSunset", "WetCloudyNight", "WetCloudyNoon", "WetCloudySunset",
    "WetNight", "WetNoon", "WetSunset",
)
ACTOR_HEADS = ("tanh", "unbounded")
PIXEL_SCALES = ("unit", "raw")
PRECISIONS = ("fp32", "bf16")
OPTIMIZERS = ("adam", "sgd")
LAYOUTS = ("separate", "shared_detached", "mlp")
HEAD_INITS = ("kaiming", "torch_default")
NORMALIZE = ("none", "clip", "running")
WANDB_MODES = ("online", "offline", "disabled")
VECTORS = ("async", "sync")


def _positive(value: float, key: str, hint: str = "") -> None:
    if not value > 0:
        raise ConfigError(f"{key} must be > 0 (got {value}){'; ' + hint if hint else ''}")


def _one_of(value: str, key: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)} (got {value!r})")


def validate(cfg: Config) -> None:
    """Raise ConfigError naming the first bad value and how to fix it."""
    _one_of(cfg.env.name, "env.name", ENVS)
    pixels = cfg.env.name in PIXEL_ENVS
    for key in ("frame_stack", "image_size", "max_episode_steps") if pixels else ():
        _positive(getattr(cfg.env, key), f"env.{key}")
    for key in ("action_repeat", "num_envs"):
        _positive(getattr(cfg.env, key), f"env.{key}")
    _one_of(cfg.env.vector, "env.vector", VECTORS)
    if cfg.total_steps % cfg.env.num_envs:
        raise ConfigError(f"total_steps ({cfg.total_steps}) must be a multiple of env.num_envs ({cfg.env.num_envs}): "
                          "each vector step collects one agent step per env")
    _validate_carla(cfg.env)
    _validate_observation_kind(cfg)
    a = cfg.agent
    for key in ("batch_size", "buffer_size", "policy_delay", "train_freq", "utd_ratio"):
        _positive(getattr(a, key), f"agent.{key}")
    if a.buffer_size // cfg.env.num_envs <= (cfg.env.frame_stack if pixels else 1):
        raise ConfigError(f"agent.buffer_size ({a.buffer_size}) split over env.num_envs ({cfg.env.num_envs}) cannot "
                          "hold a frame stack per env; raise the buffer")
    if a.batch_size > a.buffer_size:
        raise ConfigError(
            f"agent.batch_size ({a.batch_size}) is larger than agent.buffer_size ({a.buffer_size}); "
            "lower the batch or raise the buffer"
        )
    if not 0 <= a.gamma < 1:
        raise ConfigError(f"agent.gamma must be in [0, 1) (got {a.gamma})")
    if not 0 < a.tau <= 1:
        raise ConfigError(f"agent.tau must be in (0, 1] (got {a.tau})")
    for key in ("target_noise", "noise_clip", "exploration_noise"):
        if getattr(a, key) < 0:
            raise ConfigError(f"agent.{key} must be >= 0 (got {getattr(a, key)})")
    if a.start_steps < 0:
        raise ConfigError(f"agent.start_steps must be >= 0 (got {a.start_steps})")
    if not a.hidden_dims or min(a.hidden_dims) <= 0:
        raise ConfigError(f"agent.hidden_dims must be a non-empty list of positive sizes (got {list(a.hidden_dims)})")
    _one_of(a.actor_head, "agent.actor_head", ACTOR_HEADS)
    if a.preactivation_penalty < 0:
        raise ConfigError(f"agent.preactivation_penalty must be >= 0 (got {a.preactivation_penalty}); 0 turns it off")
    _one_of(a.precision, "agent.precision", PRECISIONS)
    if a.cuda_graph and cfg.device.split(":")[0] not in ("cuda", "auto"):
        raise ConfigError(f"agent.cuda_graph=true needs a CUDA device (got device={cfg.device}); set device=cuda")
    _one_of(cfg.encoder.layout, "encoder.layout", LAYOUTS)
    _positive(cfg.encoder.features_dim, "encoder.features_dim")
    _one_of(cfg.encoder.pixel_scale, "encoder.pixel_scale", PIXEL_SCALES)
    _one_of(cfg.encoder.head_init, "encoder.head_init", HEAD_INITS)
    _one_of(cfg.optim.name, "optim.name", OPTIMIZERS)
    if not 0 <= cfg.optim.momentum < 1:
        raise ConfigError(f"optim.momentum must be in [0, 1) (got {cfg.optim.momentum})")
    for key in ("actor_lr", "actor_cnn_lr", "critic_lr", "critic_cnn_lr"):
        _positive(getattr(cfg.optim, key), f"optim.{key}", "learning rates must be positive")
    for key in ("max_norm", "critic_max_norm"):
        value = getattr(cfg.clip, key)
        if value is not None:
            _positive(value, f"clip.{key}", f"use clip.{key}=null (or clip=none) to disable clipping")
    if cfg.clip.auto_percentile is not None:
        if cfg.clip.max_norm is not None:
            raise ConfigError("clip.max_norm and clip.auto_percentile are both set: use clip=auto or clip=norm10")
        if not 0 < cfg.clip.auto_percentile <= 100:
            raise ConfigError(f"clip.auto_percentile must be in (0, 100] (got {cfg.clip.auto_percentile})")
    _positive(cfg.clip.auto_history, "clip.auto_history")
    _validate_reward(cfg.reward)
    _positive(cfg.logger.log_every, "logger.log_every")
    _one_of(cfg.logger.wandb.mode, "logger.wandb.mode", WANDB_MODES)
    _validate_monitor(cfg.monitor)
    _one_of(cfg.gate.stop_on, "gate.stop_on", STOP_ON)
    if any(h <= 0 for h in cfg.gate.at):
        raise ConfigError(f"gate.at must hold agent steps > 0 (got {list(cfg.gate.at)}); [] turns self-gating off")
    _positive(cfg.eval.every, "eval.every")
    if cfg.eval.episodes < 0:
        raise ConfigError(f"eval.episodes must be >= 0 (got {cfg.eval.episodes})")
    _positive(cfg.total_steps, "total_steps")
    if cfg.checkpoint.every < 0:
        raise ConfigError(f"checkpoint.every must be >= 0 (got {cfg.checkpoint.every}); 0 turns them off")
    _positive(cfg.checkpoint.keep, "checkpoint.keep", "keep at least the newest checkpoint")
    inject = cfg.debug.inject_nonfinite_at
    if inject is not None and inject < 1:
        raise ConfigError(f"debug.inject_nonfinite_at must be an update number >= 1 (got {inject})")
    # the trainer's rule: random actions until start_steps, and every env's first vector step must find a batch
    learning_starts = max(a.start_steps, a.batch_size + cfg.env.num_envs - 1)
    updates = Schedule(cfg.total_steps, a.start_steps, 1, 1, 0, updates_per_step=updates_per_step(a.utd_ratio,
                       a.train_freq)).updates_after(cfg.total_steps, learning_starts)
    if updates < 1:
        raise ConfigError(
            f"the agent would never learn: learning starts after step {learning_starts} (agent.start_steps "
            f"{a.start_steps}, agent.batch_size {a.batch_size} + env.num_envs {cfg.env.num_envs} - 1) and "
            f"total_steps={cfg.total_steps} leaves no update at agent.utd_ratio {a.utd_ratio}; raise total_steps"
        )
    if cfg.logger.every_update and a.utd_ratio / a.train_freq > 1:
        raise ConfigError(
            "logger.every_update=true logs each update at its agent step, but agent.utd_ratio / agent.train_freq > 1 "
            "makes several updates per step; use windowed logging (logger.every_update=false)"
        )
    if cfg.device != "auto" and cfg.device.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device must be auto, cpu, cuda[:N] or mps (got {cfg.device!r})")


def _validate_observation_kind(cfg: Config) -> None:
    """Pixel envs need a CNN encoder and reward components; a gymnasium task gives a state vector and its own
    reward."""
    if (cfg.env.name == "gymnasium") != isinstance(cfg.env, GymnasiumEnvConfig):
        raise ConfigError(f"env.name={cfg.env.name} does not match the env group: pick it with env=gymnasium, "
                          "env=car_racing or env=carla, not with env.name")
    if isinstance(cfg.env, GymnasiumEnvConfig):
        if cfg.encoder.layout != "mlp":
            raise ConfigError(f"encoder={cfg.encoder.layout} is a pixel encoder, but env=gymnasium observes a state "
                              "vector: use encoder=mlp (env=gymnasium selects it unless overridden)")
        if cfg.reward.weights is not None:
            raise ConfigError("reward weights apply to car_racing and carla only: env=gymnasium trains on the task's "
                              "own reward; drop the reward=... / reward.weights override (reward.normalize applies)")
        if cfg.env.max_episode_steps is not None:
            _positive(cfg.env.max_episode_steps, "env.max_episode_steps", "null keeps the task's own limit")
        return
    if cfg.encoder.layout == "mlp":
        raise ConfigError(f"encoder=mlp needs a state-vector observation, but env={cfg.env.name} gives pixels: use "
                          "encoder=separate or encoder=shared_detached")
    if cfg.reward.weights is None:
        raise ConfigError(f"env={cfg.env.name} trains on weighted reward components: pick reward=balanced or "
                          "reward=progress_dominant (reward=native is for env=gymnasium)")


def _validate_reward(r: RewardConfig) -> None:
    _one_of(r.normalize, "reward.normalize", NORMALIZE)
    _positive(r.clip_range, "reward.clip_range")
    _positive(r.target_speed, "reward.target_speed")
    if r.weights is None:
        return
    weights = {k: getattr(r.weights, k) for k in ("progress", "smoothness", "lane_centering", "efficiency")}
    for key, value in weights.items():
        if value < 0:
            raise ConfigError(
                f"reward.weights.{key} must be >= 0 (got {value}); components already carry their sign"
            )
    if sum(weights.values()) <= 0:
        raise ConfigError("reward.weights sum to 0: give at least one component a positive weight")


def _validate_monitor(m: MonitorConfig) -> None:
    for module, t in m.thresholds.items():
        _one_of(module, "monitor.thresholds key", MODULES)
        if not 0 < t.warning <= t.critical:
            raise ConfigError(
                f"monitor.thresholds.{module} needs 0 < warning <= critical (got {t.warning}, {t.critical})"
            )
    s = m.saturation
    if not 0 < s.warning <= s.critical <= 1:
        raise ConfigError(f"monitor.saturation needs 0 < warning <= critical <= 1 (got {s.warning}, {s.critical})")
    _positive(m.max_consecutive_nonfinite, "monitor.max_consecutive_nonfinite")


def _validate_carla(env: EnvConfig) -> None:
    if (env.name == "carla") != isinstance(env, CarlaEnvConfig):
        raise ConfigError(f"env.name={env.name} does not match the env group: pick the simulator with env=carla or "
                          "env=car_racing, not with env.name")
    if not isinstance(env, CarlaEnvConfig):
        return
    for key in ("port", "tm_port"):
        if not 1 <= getattr(env, key) <= 65533:
            raise ConfigError(f"env.{key} must be a TCP port in 1..65533 (got {getattr(env, key)})")
    if env.port_step < 3:
        raise ConfigError(f"env.port_step must be >= 3 (got {env.port_step}): each server uses ports N..N+2")
    if env.job_slot < 0:
        raise ConfigError(f"env.job_slot must be >= 0 (got {env.job_slot}); '${{hydra:job.num}}' in a parallel sweep")
    last = (env.job_slot + 1) * env.num_envs - 1  # the highest server index this run uses
    server_ports = (env.port + env.job_slot * env.num_envs * env.port_step, env.port + last * env.port_step + 2)
    tm_ports = (env.tm_port + env.job_slot * env.num_envs, env.tm_port + last)
    if max(server_ports[1], tm_ports[1]) > 65535:
        raise ConfigError(f"env.job_slot={env.job_slot} puts this run's servers on ports up to {server_ports[1]} "
                          f"and Traffic Managers up to {tm_ports[1]}, beyond 65535; lower env.port or env.tm_port")
    if server_ports[0] <= tm_ports[1] and tm_ports[0] <= server_ports[1]:
        raise ConfigError(f"env.tm_port ({env.tm_port}): Traffic Manager ports {tm_ports[0]}..{tm_ports[1]} collide "
                          f"with the servers' ports {server_ports[0]}..{server_ports[1]}; pick another env.tm_port")
    for key in ("timeout", "fixed_delta_seconds", "max_lateral_offset", "spawn_retries", "settle_ticks",
                "max_idle_steps"):
        _positive(getattr(env, key), f"env.{key}")
    if env.fixed_delta_seconds > 0.1:
        raise ConfigError(f"env.fixed_delta_seconds must be <= 0.1 (got {env.fixed_delta_seconds}): CARLA's physics "
                          "substeps cover at most 0.1 s; raise env.action_repeat instead")
    _one_of(env.town, "env.town", TOWNS)
    if env.weather is not None:
        _one_of(env.weather, "env.weather", WEATHERS)
    if not env.vehicle.startswith("vehicle."):
        raise ConfigError(f"env.vehicle must be a vehicle blueprint, e.g. vehicle.tesla.model3 (got {env.vehicle!r})")
    if env.spawn_point is not None and env.spawn_point < 0:
        raise ConfigError(f"env.spawn_point must be >= 0 or null for a seeded-random one (got {env.spawn_point})")
    if env.terminal_penalty > 0:
        raise ConfigError(f"env.terminal_penalty must be <= 0 (got {env.terminal_penalty}): it is a penalty")
    for key in ("npc_vehicles", "max_reconnects", "reconnect_backoff"):
        if getattr(env, key) < 0:
            raise ConfigError(f"env.{key} must be >= 0 (got {getattr(env, key)})")
    _positive(env.camera.width, "env.camera.width")
    _positive(env.camera.height, "env.camera.height")
    if not 0 < env.camera.fov < 180:
        raise ConfigError(f"env.camera.fov must be in (0, 180) degrees (got {env.camera.fov})")
    _positive(env.server.startup_timeout, "env.server.startup_timeout")
    if env.server.command is not None and "{port}" not in env.server.command:
        raise ConfigError("env.server.command must contain {port} where the server's RPC port goes, e.g. "
                          "-carla-rpc-port={port}")
