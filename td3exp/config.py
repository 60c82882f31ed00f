"""Config schema (dataclasses): which keys exist and their types (validation of values: td3exp/validation.py).

Values live in ``conf/*.yaml``, nowhere else: these classes only say which keys exist and their types (every field
is ``MISSING``, so an option that leaves a key out fails at composition, naming it).  Hydra merges every group
option into the typed node below, so a misspelt key or a wrong type fails at composition time.  Components take these
dataclasses as they are (e.g. the agent takes ``AgentConfig``): each hyperparameter is declared once, here, and
valued once, in YAML (``CarlaEnvConfig``'s own keys still carry defaults, which conf/env/carla.yaml all sets).
Hydra is imported only where the schema is registered, so the agent may import this module.
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
    frame_stack: int = MISSING
    image_size: int = MISSING
    action_repeat: int = MISSING
    max_episode_steps: Optional[int] = MISSING  # null (env=gymnasium only): the task's registered limit
    num_envs: int = MISSING
    vector: str = MISSING


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
    batch_size: int = MISSING
    buffer_size: int = MISSING
    gamma: float = MISSING
    tau: float = MISSING
    policy_delay: int = MISSING
    target_noise: float = MISSING
    noise_clip: float = MISSING
    exploration_noise: float = MISSING
    start_steps: int = MISSING
    train_freq: int = MISSING
    utd_ratio: float = MISSING
    hidden_dims: list[int] = MISSING
    actor_head: str = MISSING
    preactivation_penalty: float = MISSING
    precision: str = MISSING
    cuda_graph: bool = MISSING


@dataclass
class EncoderConfig:
    layout: str = MISSING
    features_dim: int = MISSING
    pixel_scale: str = MISSING
    trunk_norm: bool = MISSING
    head_init: str = MISSING


@dataclass
class OptimConfig:
    actor_lr: float = MISSING
    actor_cnn_lr: float = MISSING
    critic_lr: float = MISSING
    critic_cnn_lr: float = MISSING
    name: str = MISSING
    momentum: float = MISSING


@dataclass
class ClipConfig:
    max_norm: float | None = MISSING
    critic_max_norm: float | None = MISSING
    auto_percentile: float | None = MISSING
    auto_history: int = MISSING


@dataclass
class RewardWeightsConfig:
    progress: float = MISSING
    smoothness: float = MISSING
    lane_centering: float = MISSING
    efficiency: float = MISSING


@dataclass
class RewardConfig:
    weights: Optional[RewardWeightsConfig] = MISSING  # null under reward=native (the env's own reward)
    normalize: str = MISSING
    clip_range: float = MISSING
    target_speed: float = MISSING


@dataclass
class WandbConfig:
    mode: str = MISSING
    project: str = MISSING
    entity: str | None = MISSING
    group: str | None = MISSING
    tags: list[str] = MISSING
    name: str | None = MISSING


@dataclass
class LoggerConfig:
    log_every: int = MISSING
    every_update: bool = MISSING
    progress_bar: bool = MISSING
    wandb: WandbConfig = MISSING


@dataclass
class AlertThreshold:
    warning: float = MISSING
    critical: float = MISSING


@dataclass
class MonitorConfig:
    thresholds: dict[str, AlertThreshold] = MISSING  # one per module of MODULES
    saturation: AlertThreshold = MISSING
    max_consecutive_nonfinite: int = MISSING


@dataclass
class EvalConfig:
    every: int = MISSING
    episodes: int = MISSING


@dataclass
class TrialConfig:
    """Set by the Optuna sweeper (hydra/sweeper=optuna), never by hand.  The study's storage URL reaches the job in
    the environment (``td3exp.sweep_trial.STORAGE_ENV``), never in the config: it may hold a password."""

    study_name: str | None = MISSING
    number: int | None = MISSING


@dataclass
class CheckpointConfig:
    every: int = MISSING
    keep: int = MISSING


@dataclass
class DebugConfig:
    inject_nonfinite_at: int | None = MISSING


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
    eval: EvalConfig = MISSING
    trial: TrialConfig = MISSING
    checkpoint: CheckpointConfig = MISSING
    debug: DebugConfig = MISSING
    resume: str | None = MISSING
    seed: int = MISSING
    total_steps: int = MISSING
    device: str = MISSING
    deterministic: bool = MISSING
    save_model: bool = MISSING


def register_configs() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="td3exp_schema", node=Config)
    ConfigStore.instance().store(group="env", name="carla_schema", node=CarlaEnvConfig)  # conf/env/carla.yaml
    ConfigStore.instance().store(group="env", name="gymnasium_schema", node=GymnasiumEnvConfig)
