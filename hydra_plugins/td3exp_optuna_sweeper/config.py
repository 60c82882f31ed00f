"""Schema of ``hydra/sweeper=optuna`` (registered on import as ``optuna_schema``): which keys exist and their types.
Their values live in conf/hydra/sweeper/optuna.yaml, which documents each."""

from dataclasses import dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class SamplerConf:
    name: str = MISSING  # tpe | random | grid | nsgaii
    seed: Optional[int] = MISSING


@dataclass
class PrunerConf:
    name: str = MISSING  # median | hyperband | successive_halving | none | stability | gate
    n_startup_trials: int = MISSING  # median: trials that finish before pruning starts
    n_warmup_steps: int = MISSING  # median: steps of a trial before it can be pruned
    min_resource: Any = MISSING  # hyperband / successive_halving: minimum steps of a trial
    reduction_factor: int = MISSING  # hyperband / successive_halving
    wrap: str = MISSING  # stability, gate: the pruner that judges evaluations (median | hyperband | ... | none)
    saturation_warmup_steps: int = MISSING  # stability: agent steps after the first update before saturation counts
    saturation_patience: int = MISSING  # stability: flushes in a row with the actor saturated past the critical level


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.td3exp_optuna_sweeper.sweeper.OptunaSweeper"
    sampler: SamplerConf = MISSING
    direction: Any = MISSING  # one direction, or a list (multi-objective)
    objectives: list[str] = MISSING  # run summary keys, one per direction
    storage: Optional[str] = MISSING  # Optuna RDB URL or journal file path; null = SQLite file in the sweep dir
    study_name: str = MISSING
    n_trials: int = MISSING  # trials this invocation runs (re-runs of trials a dead sweeper left behind included)
    n_jobs: int = MISSING  # trials in flight at once (one launcher batch)
    max_failure_rate: float = MISSING  # stop the sweep once failures exceed this share of n_trials
    heartbeat_s: float = MISSING  # seconds between this sweeper's "alive" stamps on its running trials
    stale_after_s: float = MISSING  # a RUNNING trial without a stamp this long was left behind by a dead sweeper
    params: dict[str, str] = MISSING
    pruner: PrunerConf = MISSING


ConfigStore.instance().store(group="hydra/sweeper", name="optuna_schema", node=OptunaSweeperConf, provider="td3exp")
