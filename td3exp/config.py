"""Config schema (dataclasses) and validation with one-line, fixable error messages.

Values live in ``conf/*.yaml``; these classes only say which keys exist and their types.  Hydra merges every group
option into the typed node below, so a misspelt key or a wrong type fails at composition time.  Components take these
dataclasses as they are (e.g. the agent takes ``AgentConfig``): each hyperparameter is declared once, here.  Hydra is
imported only where the schema is registered, so the agent may import this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

MODULES = ("actor", "actor_cnn", "critic", "critic_cnn")


class ConfigError(ValueError):
    """A user mistake in the config: printed as one line, exit code 2."""


@dataclass
class EnvConfig:
    name: str = MISSING
    frame_stack: int = 4
    image_size: int = 84
    action_repeat: int = 1
    max_episode_steps: int = 1000
    num_envs: int = 1
    vector: str = "async"


@dataclass
class CarlaCameraConfig:
    width: int = 160
    height: int = 120
    fov: float = 90.0
    x: float = 1.5
    z: float = 2.4
    pitch: float = -15.0


@dataclass
class CarlaServerConfig:
    command: str | None = None
    startup_timeout: float = 120.0


@dataclass
class CarlaEnvConfig(EnvConfig):
    """The CARLA keys (conf/env/carla.yaml documents each): only ``env=carla`` runs have them."""

    host: str = "127.0.0.1"
    port: int = 2000
    port_step: int = 3
    tm_port: int = 8000
    timeout: float = 10.0
    town: str = "Town04"
    fixed_delta_seconds: float = 0.05
    vehicle: str = "vehicle.tesla.model3"
    spawn_point: int | None = None
    spawn_retries: int = 20
    settle_ticks: int = 10
    camera: CarlaCameraConfig = field(default_factory=CarlaCameraConfig)
    max_lateral_offset: float = 2.0
    max_idle_steps: int = 100
    terminal_penalty: float = -100.0
    npc_vehicles: int = 0
    weather: str | None = None
    max_reconnects: int = 3
    reconnect_backoff: float = 2.0
    server: CarlaServerConfig = field(default_factory=CarlaServerConfig)


@dataclass
class AgentConfig:
    """TD3's hyperparameters; conf/agent/td3.yaml documents each key."""

    name: str = MISSING
    batch_size: int = 256
    buffer_size: int = 1_000_000
    gamma: float = 0.99
    tau: float = 0.005
    policy_delay: int = 2
    target_noise: float = 0.2
    noise_clip: float = 0.5
    exploration_noise: float = 0.1
    start_steps: int = 10_000
    train_freq: int = 1
    utd_ratio: float = 1.0
    hidden_dims: list[int] = field(default_factory=lambda: [256, 256])
    actor_head: str = "tanh"
    preactivation_penalty: float = 0.0
    precision: str = "fp32"
    cuda_graph: bool = False


@dataclass
class EncoderConfig:
    layout: str = "separate"
    features_dim: int = 512
    pixel_scale: str = "unit"
    trunk_norm: bool = False


@dataclass
class OptimConfig:
    actor_lr: float = 1e-4
    actor_cnn_lr: float = 1e-4
    critic_lr: float = 1e-4
    critic_cnn_lr: float = 1e-4
    name: str = "adam"
    momentum: float = 0.9


@dataclass
class ClipConfig:
    max_norm: float | None = None
    critic_max_norm: float | None = None
    auto_percentile: float | None = None
    auto_history: int = 1000


@dataclass
class RewardWeightsConfig:
    progress: float = 0.6
    smoothness: float = 0.2
    lane_centering: float = 0.1
    efficiency: float = 0.1


@dataclass
class RewardConfig:
    weights: RewardWeightsConfig = field(default_factory=RewardWeightsConfig)
    normalize: str = "clip"
    clip_range: float = 10.0
    target_speed: float = 40.0


@dataclass
class WandbConfig:
    mode: str = "offline"
    project: str = "td3exp"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    name: str | None = None


@dataclass
class LoggerConfig:
    log_every: int = 250
    every_update: bool = False
    progress_bar: bool = True
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class AlertThreshold:
    warning: float = 1e4
    critical: float = 5e4


@dataclass
class MonitorConfig:
    thresholds: dict[str, AlertThreshold] = field(
        default_factory=lambda: {m: AlertThreshold() for m in MODULES}
    )
    saturation: AlertThreshold = field(default_factory=lambda: AlertThreshold(warning=0.5, critical=0.95))
    max_consecutive_nonfinite: int = 10


@dataclass
class EvalConfig:
    every: int = 10_000
    episodes: int = 5


@dataclass
class TrialConfig:
    """Set by the Optuna sweeper (hydra/sweeper=optuna), never by hand.  The study's storage URL reaches the job in
    the environment (``td3exp.sweep_trial.STORAGE_ENV``), never in the config: it may hold a password."""

    study_name: str | None = None
    number: int | None = None


@dataclass
class CheckpointConfig:
    every: int = 10_000
    keep: int = 2


@dataclass
class DebugConfig:
    inject_nonfinite_at: int | None = None


@dataclass
class Config:
    env: EnvConfig = MISSING
    agent: AgentConfig = MISSING
    encoder: EncoderConfig = MISSING
    optim: OptimConfig = MISSING
    clip: ClipConfig = MISSING
    reward: RewardConfig = MISSING
    logger: LoggerConfig = MISSING
    monitor: MonitorConfig = MISSING
    eval: EvalConfig = field(default_factory=EvalConfig)
    trial: TrialConfig = field(default_factory=TrialConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    debug: DebugConfig = field(default_factory=DebugConfig)
    resume: str | None = None
    seed: int = 0
    total_steps: int = 100_000
    device: str = "auto"
    deterministic: bool = False
    save_model: bool = True


def register_configs() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="td3exp_schema", node=Config)
    ConfigStore.instance().store(group="env", name="carla_schema", node=CarlaEnvConfig)  # conf/env/carla.yaml


ENVS = ("car_racing", "carla")
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
LAYOUTS = ("separate", "shared_detached")
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
    for key in ("frame_stack", "image_size", "action_repeat", "max_episode_steps", "num_envs"):
        _positive(getattr(cfg.env, key), f"env.{key}")
    _one_of(cfg.env.vector, "env.vector", VECTORS)
    if cfg.total_steps % cfg.env.num_envs:
        raise ConfigError(f"total_steps ({cfg.total_steps}) must be a multiple of env.num_envs ({cfg.env.num_envs}): "
                          "each vector step collects one agent step per env")
    _validate_carla(cfg.env)
    a = cfg.agent
    for key in ("batch_size", "buffer_size", "policy_delay", "train_freq", "utd_ratio"):
        _positive(getattr(a, key), f"agent.{key}")
    if a.buffer_size // cfg.env.num_envs <= cfg.env.frame_stack:
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
    if cfg.total_steps < a.start_steps:
        raise ConfigError(
            f"total_steps ({cfg.total_steps}) is smaller than agent.start_steps ({a.start_steps}): "
            "the agent would never learn; raise total_steps or lower agent.start_steps"
        )
    if cfg.device != "auto" and cfg.device.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device must be auto, cpu, cuda[:N] or mps (got {cfg.device!r})")


def _validate_reward(r: RewardConfig) -> None:
    weights = {k: getattr(r.weights, k) for k in ("progress", "smoothness", "lane_centering", "efficiency")}
    for key, value in weights.items():
        if value < 0:
            raise ConfigError(
                f"reward.weights.{key} must be >= 0 (got {value}); components already carry their sign"
            )
    if sum(weights.values()) <= 0:
        raise ConfigError("reward.weights sum to 0: give at least one component a positive weight")
    _one_of(r.normalize, "reward.normalize", NORMALIZE)
    _positive(r.clip_range, "reward.clip_range")
    _positive(r.target_speed, "reward.target_speed")


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
    if env.port <= env.tm_port <= env.port + 2:
        raise ConfigError(f"env.tm_port ({env.tm_port}) collides with the server's ports {env.port}..{env.port + 2}")
    if env.port_step < 3:
        raise ConfigError(f"env.port_step must be >= 3 (got {env.port_step}): each server uses ports N..N+2")
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
