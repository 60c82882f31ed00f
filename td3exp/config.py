"""Config schema (dataclasses): which keys exist and their types (validation of values: td3exp/validation.py).

Values live in ``conf/*.yaml``; these classes only say which keys exist and their types.  Hydra merges every group
option into the typed node below, so a misspelt key or a wrong type fails at composition time.  Components take these
dataclasses as they are (e.g. the agent takes ``AgentConfig``): each hyperparameter is declared once, here.  Hydra is
imported only where the schema is registered, so the agent may import this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from omegaconf import MISSING

from td3exp.report.gate import GateConfig

MODULES = ("actor", "actor_cnn", "critic", "critic_cnn")


class ConfigError(ValueError):
    """A user mistake in the config: printed as one line, exit code 2."""


@dataclass
class EnvConfig:
    name: str = MISSING
    frame_stack: int = 4
    image_size: int = 84
    action_repeat: int = 1
    max_episode_steps: Optional[int] = 1000  # null (env=gymnasium only): the task's registered limit
    num_envs: int = 1
    vector: str = "async"


@dataclass
class GymnasiumEnvConfig(EnvConfig):
    """A registered gymnasium task with a flat Box observation (conf/env/gymnasium.yaml documents each key);
    frame_stack and image_size do not apply."""

    id: str = MISSING


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
    job_slot: int = 0
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
    allow_version_mismatch: bool = False
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
    head_init: str = MISSING


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
    weights: Optional[RewardWeightsConfig] = MISSING  # null under reward=native (the env's own reward)
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
class SelfGateConfig(GateConfig):
    """The stability report's gate (its criteria: ``gate=seed|strict``, conf/gate/) and when a run applies it to
    itself (conf/config.yaml documents ``at`` and ``stop_on``; td3exp/self_gate.py)."""

    at: list[int] = MISSING
    stop_on: str = MISSING


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
    gate: SelfGateConfig = MISSING
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
    ConfigStore.instance().store(group="env", name="gymnasium_schema", node=GymnasiumEnvConfig)
