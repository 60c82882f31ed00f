"""Optuna sweeper for Hydra on the current Optuna release (ask/tell), with pruning through the shared storage.

Each batch asks ``n_jobs`` trials, hands them to the configured launcher (which may run them in other processes or
on other machines), and tells the study how each ended: COMPLETE with its objective values, PRUNED when the job's
reports made the pruner stop it, FAIL (with the reason in the ``failure`` attribute) when its config does not
compose, it raised, or its worker died.  A job reports to its own trial in the storage (``td3exp.sweep_trial``), so
pruning works wherever the job runs; the storage URL reaches jobs in the environment, never in a file.  Trials that
a killed sweeper left RUNNING are failed and re-run by the next sweeper on the study (``liveness``).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, read_write
from optuna.distributions import BaseDistribution
from optuna.trial import TrialState

from td3exp.sweep_trial import STORAGE_ENV, make_pruner, open_storage, redact

from .liveness import JOB_DIR, Heartbeat, recover_left_behind
from .results import write_results
from .space import distribution, make_sampler, resumed_seed, trials_in

log = logging.getLogger(__name__)
STORAGE_KEY = "hydra.sweeper.storage"


class OptunaSweeper(Sweeper):
    def __init__(self, sampler: Any, direction: Any, objectives: Any, storage: str | None, study_name: str,
                 n_trials: int, n_jobs: int, max_failure_rate: float, heartbeat_s: float, stale_after_s: float,
                 params: Any, pruner: Any) -> None:
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
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.params = dict(params or {})
        self.job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        hide_storage_url(config)  # before the launcher copies anything from it
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
        storage = open_storage(url)
        earlier = trials_in(storage, self.study_name)  # a resumed study: the sampler continues the search
        study = optuna.create_study(
            study_name=self.study_name, storage=storage, sampler=make_sampler(self.sampler_conf, space, earlier),
            pruner=make_pruner(self.pruner_conf), directions=self.directions, load_if_exists=True,
        )
        study.set_user_attr("pruner", self.pruner_conf)
        os.environ[STORAGE_ENV] = url  # jobs find the storage here: an override would write a password to files
        recover_left_behind(study, storage, self.stale_after_s)  # re-queued first: the next asks return them
        log.info("Optuna study %s in %s (%d trials before, sampler seed %s): %d trials, %d at a time, space %s",
                 self.study_name, redact(url), earlier, resumed_seed(self.sampler_conf.seed, earlier), self.n_trials,
                 self.n_jobs, {k: repr(v) for k, v in space.items()})
        finished = failed = 0
        while finished < self.n_trials:
            trials = [study.ask(space) for _ in range(min(self.n_jobs, self.n_trials - finished))]
            failed += self._run_batch(study, trials, fixed)
            finished += len(trials)
            if failed > self.max_failure_rate * self.n_trials:
                write_results(study, self.sweep_dir)
                raise RuntimeError(f"{failed} of {finished} trials failed, more than max_failure_rate "
                                   f"{self.max_failure_rate} of {self.n_trials}; see the FAIL trials' 'failure' "
                                   "attribute")
        write_results(study, self.sweep_dir)

    def _run_batch(self, study: optuna.Study, trials: list[optuna.trial.Trial], fixed: list[str]) -> int:
        """Launch one batch and tell each trial how it ended; returns how many failed."""
        failures, runnable, batch = 0, [], []
        for trial in trials:
            # sampled values first: they name the job's directory and W&B run (td3exp.dashboard.names)
            overrides = ([f"{k}={v}" for k, v in trial.params.items()] + fixed
                         + [f"trial.study_name={self.study_name}", f"trial.number={trial.number}"])
            earlier = trial.user_attrs.get(JOB_DIR)  # a re-run: the job resumes from its checkpoint in its directory
            if earlier:
                overrides.append(f"hydra.sweep.subdir='{earlier}'")
            try:  # what the launcher would do first: a config that does not compose fails this trial only
                job_config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
            except Exception as error:
                failures += not self._fail(study, trial, error)
                continue
            if not earlier:
                trial.set_user_attr(JOB_DIR, job_directory(job_config, self.job_idx + len(batch)))
            runnable.append(trial)
            batch.append(overrides)
        if not batch:
            return failures
        self.validate_batch_is_legal(batch)
        returns: list[Any] = [None] * len(batch)
        launch_error: Exception | None = None
        with Heartbeat(runnable, self.heartbeat_s):
            try:
                returns = list(self.launcher.launch(batch, initial_job_idx=self.job_idx))
            except Exception as error:  # e.g. a SIGKILL'd joblib or submitit worker: the batch's results are lost
                launch_error = error
        self.job_idx += len(batch)
        for trial, ret in zip(runnable, returns, strict=True):
            failures += not self._tell(study, trial, ret, launch_error)
        return failures

    def _tell(self, study: optuna.Study, trial: optuna.trial.Trial, ret: Any, launch_error: Exception | None) -> bool:
        """Record how a job ended; False when it failed.  Without a job return (the launcher raised), what the job
        left on its trial decides: a summary means it completed, a ``pruned`` reason that it was pruned."""
        left = stored(study, trial).user_attrs
        if ret is None:
            if "summary" in left:
                return self._complete(study, trial, [left["summary"].get(o, float("nan")) for o in self.objectives])
            if "pruned" not in left:
                return self._fail(study, trial, launch_error)
            study.tell(trial, state=TrialState.PRUNED)
            return True
        try:
            value = ret.return_value  # re-raises the job's exception
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
            return True
        except BaseException as error:  # any job error: the sweep records it and goes on
            return self._fail(study, trial, error)
        if self.objectives == ["eval/return"]:
            return self._complete(study, trial, [float(value)])
        # the job left its run summary on its trial (td3exp.sweep_trial.TrialReporter.finish)
        return self._complete(study, trial, [left.get("summary", {}).get(o, float("nan")) for o in self.objectives])

    def _complete(self, study: optuna.Study, trial: optuna.trial.Trial, values: list[float]) -> bool:
        study.tell(trial, [float(v) for v in values])  # a NaN objective makes Optuna record the trial FAILED
        return stored(study, trial).state == TrialState.COMPLETE

    def _fail(self, study: optuna.Study, trial: optuna.trial.Trial, error: BaseException | None) -> bool:
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:1000] if error else "the job left no result"
        trial.set_user_attr("failure", reason)
        study.tell(trial, state=TrialState.FAIL)
        log.warning("trial %d failed: %s", trial.number, reason)
        return False


def hide_storage_url(config: DictConfig) -> None:
    """Hydra writes the sweeper's config and the command-line overrides into every job's ``.hydra/hydra.yaml`` (and
    this sweeper into ``multirun.yaml``), and W&B records ``sys.argv`` of a job that runs in this process: replace
    the storage URL in all three by one without its password and query.  Hydra has parsed the command line already."""
    url = config.hydra.sweeper.get("storage")
    if url is None or redact(url) == url:
        return
    shown = f"{STORAGE_KEY}='{redact(url)}'"
    with read_write(config.hydra):
        overrides = [o for o in config.hydra.overrides.hydra if not _sets_storage(o)]
        config.hydra.overrides.hydra = [*overrides, shown]
        config.hydra.sweeper.storage = redact(url)
    sys.argv[:] = [shown if _sets_storage(arg) else arg for arg in sys.argv]


def _sets_storage(override: str) -> bool:
    return override.split("=", 1)[0].lstrip("+~") == STORAGE_KEY


def job_directory(job_config: DictConfig, num: int) -> str:
    """The absolute directory the launcher gives this job (it numbers the batch's jobs from ``num``)."""
    with read_write(job_config.hydra):
        job_config.hydra.job.num = num
    return str((Path(job_config.hydra.sweep.dir) / str(job_config.hydra.sweep.subdir)).resolve())


def stored(study: optuna.Study, trial: optuna.trial.Trial) -> optuna.trial.FrozenTrial:
    """The trial as the storage has it now (jobs elsewhere may have written to it)."""
    return next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
