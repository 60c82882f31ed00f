"""Optuna sweeper for Hydra on the current Optuna release (ask/tell), with pruning through the shared storage.

Each batch asks ``n_jobs`` trials, hands them to the configured launcher (which may run them in other processes or
on other machines), and tells the study how each ended: COMPLETE with its objective values, PRUNED when the job's
reports made the pruner stop it, FAILED (with the reason) when it raised.  A job reports its evaluations to its own
trial in the storage (``td3exp.sweep_trial``), so pruning works wherever the job runs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from td3exp.sweep_trial import STORAGE_ENV, make_pruner, open_storage, redact

from .config import SamplerConf
from .results import write_results

log = logging.getLogger(__name__)


def distribution(override: Override) -> BaseDistribution:
    """Hydra sweep syntax -> Optuna distribution: choice -> categorical, range -> int/float with step,
    interval -> int/float, log-scaled with tag(log, ...)."""
    if override.is_choice_sweep():
        return CategoricalDistribution(list(override.sweep_iterator()))
    value = override.value()
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        values = list(override.sweep_iterator())
        if all(isinstance(v, int) for v in (start, stop, step)):
            return IntDistribution(int(values[0]), int(values[-1]), step=int(step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(step))
    if isinstance(value, IntervalSweep):
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ValueError(f"{override.input_line}: not a search space; use choice(...), range(...) or interval(...)")


class AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler ends a study with study.stop() once the grid is done, which only works inside Study.optimize;
    under ask/tell the sweeper itself stops after the grid's size of trials."""

    def after_trial(self, study: optuna.Study, trial: Any, state: TrialState, values: Any) -> None:
        pass


def make_sampler(conf: SamplerConf, space: dict[str, BaseDistribution]) -> optuna.samplers.BaseSampler:
    if conf.name == "tpe":
        return optuna.samplers.TPESampler(seed=conf.seed)
    if conf.name == "random":
        return optuna.samplers.RandomSampler(seed=conf.seed)
    if conf.name == "nsgaii":
        return optuna.samplers.NSGAIISampler(seed=conf.seed)
    if conf.name == "grid":
        grid = {}
        for name, dist in space.items():
            if not isinstance(dist, CategoricalDistribution):
                raise ValueError(f"sampler grid needs choice(...) params; {name} is {type(dist).__name__}")
            grid[name] = list(dist.choices)
        return AskTellGridSampler(grid, seed=conf.seed)
    raise ValueError(f"hydra.sweeper.sampler.name must be tpe, random, grid or nsgaii (got {conf.name!r})")


class OptunaSweeper(Sweeper):
    def __init__(self, sampler: Any, direction: Any, objectives: Any, storage: str | None, study_name: str,
                 n_trials: int, n_jobs: int, max_failure_rate: float, params: Any, pruner: Any) -> None:
        self.sampler_conf = OmegaConf.to_object(sampler) if isinstance(sampler, DictConfig) else sampler
        # plain dict: stored on the study so jobs on any machine build the same pruner
        self.pruner_conf = OmegaConf.to_container(pruner) if isinstance(pruner, DictConfig) else dict(pruner)
        directions = direction if isinstance(direction, (list, tuple)) or OmegaConf.is_list(direction) else [direction]
        self.directions = [str(d) for d in directions]
        self.objectives = [str(o) for o in objectives]
        if len(self.objectives) != len(self.directions):
            raise ValueError(f"hydra.sweeper.objectives ({self.objectives}) needs one entry per direction "
                             f"({self.directions})")
        self.storage_url, self.study_name = storage, study_name
        self.n_trials, self.n_jobs, self.max_failure_rate = n_trials, max(1, n_jobs), max_failure_rate
        self.params = dict(params or {})
        self.job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.sweep_dir = Path(config.hydra.sweep.dir)

    def _search_space(self, arguments: list[str]) -> tuple[dict[str, BaseDistribution], list[str]]:
        parser = OverridesParser.create()
        lines = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        space: dict[str, BaseDistribution] = {}
        fixed: dict[str, str] = {}
        for override in parser.parse_overrides(lines):  # later lines (the command line) win
            key = override.get_key_element()
            space.pop(key, None)
            fixed.pop(key, None)
            if override.is_sweep_override():
                space[key] = distribution(override)
            else:
                fixed[key] = override.input_line
        return space, list(fixed.values())

    def sweep(self, arguments: list[str]) -> None:
        space, fixed = self._search_space(arguments)
        if self.sampler_conf.name == "grid":
            grid_size = 1
            for dist in space.values():
                grid_size *= len(dist.choices)  # type: ignore[attr-defined]
            self.n_trials = min(self.n_trials, grid_size)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")
        url = self.storage_url or f"sqlite:///{(self.sweep_dir / 'optuna.db').resolve()}"
        study = optuna.create_study(
            study_name=self.study_name, storage=open_storage(url), sampler=make_sampler(self.sampler_conf, space),
            pruner=make_pruner(self.pruner_conf), directions=self.directions, load_if_exists=True,
        )
        study.set_user_attr("pruner", self.pruner_conf)
        os.environ[STORAGE_ENV] = url  # jobs find the storage here: an override would write a password to files
        log.info("Optuna study %s in %s: %d trials, %d at a time, space %s", self.study_name, redact(url),
                 self.n_trials, self.n_jobs, {k: repr(v) for k, v in space.items()})
        finished = failed = 0
        while finished < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - finished))]
            # sampled values first: they name the job's directory and W&B run (td3exp.dashboard.names)
            batch = [[f"{k}={v}" for k, v in t.params.items()] + fixed
                     + [f"trial.study_name={self.study_name}", f"trial.number={t.number}"] for t in trials]
            self.validate_batch_is_legal(batch)
            returns = self.launcher.launch(batch, initial_job_idx=self.job_idx)
            self.job_idx += len(batch)
            for trial, ret in zip(trials, returns, strict=True):
                failed += not self._tell(study, trial, ret)
            finished += len(trials)
            if failed > self.max_failure_rate * self.n_trials:
                write_results(study, self.sweep_dir)
                raise RuntimeError(f"{failed} of {finished} trials failed, more than max_failure_rate "
                                   f"{self.max_failure_rate} of {self.n_trials}; see the FAIL trials' 'failure' "
                                   "attribute")
        write_results(study, self.sweep_dir)

    def _tell(self, study: optuna.Study, trial: optuna.trial.Trial, ret: Any) -> bool:
        """Record how a job ended; False when it failed."""
        try:
            value = ret.return_value  # re-raises the job's exception
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
            return True
        except BaseException as error:  # any job error: the sweep records it and goes on
            trial.set_user_attr("failure", f"{type(error).__name__}: {error}")
            study.tell(trial, state=TrialState.FAIL)
            log.warning("trial %d failed: %s: %s", trial.number, type(error).__name__, error)
            return False
        if self.objectives == ["eval/return"]:
            values = [float(value)]
        else:  # the job left its run summary on its trial (td3exp.sweep_trial.TrialReporter.finish)
            summary = stored(study, trial).user_attrs.get("summary", {})
            values = [float(summary.get(name, float("nan"))) for name in self.objectives]
        study.tell(trial, values)  # a NaN objective makes Optuna record the trial FAILED
        return stored(study, trial).state == TrialState.COMPLETE


def stored(study: optuna.Study, trial: optuna.trial.Trial) -> optuna.trial.FrozenTrial:
    """The trial as the storage has it now (jobs elsewhere may have written to it)."""
    return next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
