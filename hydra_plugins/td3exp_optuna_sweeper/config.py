"""Schema of ``hydra/sweeper=optuna`` (registered on import; values documented in conf/hydra/sweeper/*.yaml)."""

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class SamplerConf:
    name: str = "tpe"  # tpe | random | grid | nsgaii
    seed: Optional[int] = None


@dataclass
class PrunerConf:
    name: str = "median"  # median | hyperband | successive_halving | none | stability | gate
    n_startup_trials: int = 5  # median: trials that finish before pruning starts
    n_warmup_steps: int = 0  # median: steps of a trial before it can be pruned
    min_resource: Any = "auto"  # hyperband / successive_halving: minimum steps of a trial
    reduction_factor: int = 3  # hyperband / successive_halving
    wrap: str = "none"  # stability, gate: the pruner of evaluations (median | hyperband | successive_halving | none)
    saturation_warmup_steps: int = 1000  # stability: agent steps after the first update before saturation counts
    saturation_patience: int = 2  # stability: flushes in a row with the actor saturated past the critical level


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.td3exp_optuna_sweeper.sweeper.OptunaSweeper"
    sampler: SamplerConf = field(default_factory=SamplerConf)
    direction: Any = "maximize"  # one direction, or a list (multi-objective)
    objectives: list[str] = field(default_factory=lambda: ["eval/return"])  # run summary keys, one per direction
    storage: Optional[str] = None  # Optuna RDB URL or journal file path; null = SQLite file in the sweep dir
    study_name: str = "td3exp"
    n_trials: int = 20  # trials this invocation runs (re-runs of trials a dead sweeper left behind included)
    n_jobs: int = 1  # trials in flight at once (one launcher batch)
    max_failure_rate: float = 0.5  # stop the sweep once failures exceed this share of n_trials
    heartbeat_s: float = 30.0  # seconds between this sweeper's "alive" stamps on its running trials
    stale_after_s: float = 300.0  # a RUNNING trial without a stamp this long was left behind by a dead sweeper
    params: dict[str, str] = field(default_factory=dict)
    pruner: PrunerConf = field(default_factory=PrunerConf)


ConfigStore.instance().store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="td3exp")
