"""The job's side of an Optuna sweep: report evaluations and stability to its trial in the shared storage, so a pruner
can stop it from any process or machine, and leave the run's summary for the sweeper.

The storage URL reaches the job in the environment (``STORAGE_ENV``, set by the sweeper), never as an override: an
override would write a database password into ``.hydra/``, the W&B config and the run name.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from td3exp.monitor import NonFiniteError

STORAGE_ENV = "TD3EXP_TRIAL_STORAGE"
JOURNAL_SUFFIXES = (".log", ".journal")
PRUNERS = ("median", "hyperband", "successive_halving", "none", "stability", "gate")
IN_JOB_PRUNERS = ("stability", "gate")  # judged in the job itself; on evaluations they defer to ``wrap``


def open_storage(url: str) -> Any:
    """An Optuna storage from a URL: an RDB URL (sqlite://, postgresql://, mysql://) or a journal file path
    (``*.log`` / ``*.journal``, for workers on several machines sharing a file system)."""
    import optuna

    if url.endswith(JOURNAL_SUFFIXES) and "://" not in url:
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url))
    return _rdb_storage(url)


def _rdb_storage(url: str, attempts: int = 5) -> Any:
    """RDBStorage, retried while sweepers started together create the schema of a fresh database: PostgreSQL's
    ``CREATE TYPE`` / ``CREATE TABLE`` race and the loser fails with a duplicate; the next try finds the schema."""
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(1, attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except (IntegrityError, ProgrammingError) as error:
            if "already exists" not in str(error):
                raise
            time.sleep(0.2 * attempt)
    return optuna.storages.RDBStorage(url)  # the last try raises whatever it meets


def redact(url: str) -> str:
    """The storage URL without its password and query (which may hold credentials), for logs and saved configs."""
    if "://" not in url:
        return url  # a journal file path
    from sqlalchemy.engine import make_url

    return make_url(url).set(query={}).render_as_string(hide_password=True)


def make_pruner(conf: Mapping[str, Any]) -> Any:
    """Pruner from the sweeper's ``pruner`` config (also stored on the study as the ``pruner`` user attribute).
    ``stability`` (``StabilityRule``) and ``gate`` (the run's own gate verdict at ``gate.at``, td3exp/self_gate.py)
    prune in the job; on evaluations they defer to the pruner named by ``wrap``."""
    import optuna

    name = conf.get("name", "median")
    if name in IN_JOB_PRUNERS:
        if conf.get("wrap", "none") in IN_JOB_PRUNERS:
            raise ValueError("hydra.sweeper.pruner.wrap must be median, hyperband, successive_halving or none")
        return make_pruner({**conf, "name": conf.get("wrap", "none")})
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=conf.get("n_startup_trials", 5),
                                           n_warmup_steps=conf.get("n_warmup_steps", 0))
    if name in ("hyperband", "successive_halving"):
        kind = optuna.pruners.HyperbandPruner if name == "hyperband" else optuna.pruners.SuccessiveHalvingPruner
        return kind(min_resource=conf.get("min_resource", "auto"), reduction_factor=conf.get("reduction_factor", 3))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"hydra.sweeper.pruner.name must be one of {', '.join(PRUNERS)} (got {name!r})")


@dataclass
class StabilityRule:
    """When a run is hopeless whatever its return: a critical gradient alert, or an actor saturated past the critical
    share (in its most saturated action dimension) at ``patience`` flushes in a row once ``warmup_steps`` agent steps
    have passed since its first update."""

    saturation_critical: float
    warmup_steps: int = 1000
    patience: int = 2
    _first_update_step: int | None = field(default=None, init=False)
    _saturated_flushes: int = field(default=0, init=False)

    def state_dict(self) -> dict[str, Any]:
        """The warm-up start and the count of saturated flushes: a resumed job goes on counting from them."""
        return {"first_update_step": self._first_update_step, "saturated_flushes": self._saturated_flushes}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._first_update_step, self._saturated_flushes = state["first_update_step"], state["saturated_flushes"]

    def verdict(self, step: int, latest: Mapping[str, float]) -> str | None:
        """The reason to stop at this flush, or None."""
        critical = latest.get("alerts/critical", 0.0)
        if critical > 0:
            return f"critical gradient alert by step {step} ({critical:.0f} module norms above their critical level)"
        # the largest dimension's share, as the monitor and the gate use (one pinned dimension is 0.5 in the mean);
        # runs that do not log it fall back to the dimension mean, as the report's gate does
        saturation = latest.get("actor/saturation_max", latest.get("actor/saturation"))
        if saturation is None:
            return None
        if self._first_update_step is None:
            self._first_update_step = step
        warmed_up = step - self._first_update_step >= self.warmup_steps
        self._saturated_flushes = self._saturated_flushes + 1 if warmed_up and saturation > self.saturation_critical \
            else 0
        if self._saturated_flushes >= self.patience:
            return (f"actor saturated ({saturation:.2f} > {self.saturation_critical}) at {self.patience} flushes in a "
                    f"row by step {step}, after warm-up: a dead policy")
        return None


class TrialReporter:
    """One job's trial.  ``report`` after each evaluation, ``check`` after each metric flush; both raise
    ``optuna.TrialPruned`` (with the reason stored on the trial as the ``pruned`` user attribute) to stop the run."""

    def __init__(self, storage_url: str, study_name: str, number: int, saturation_critical: float) -> None:
        import optuna  # only sweep jobs need it

        self._optuna = optuna
        self.pruned = optuna.TrialPruned
        storage = open_storage(storage_url)
        study_id = storage.get_study_id_from_name(study_name)
        pruner_conf = storage.get_study_user_attrs(study_id).get("pruner", {"name": "none"})
        # the pruner the sweeper configured: should_prune() runs here, in the job
        study = optuna.load_study(study_name=study_name, storage=storage, pruner=make_pruner(pruner_conf))
        # the trial the sweeper asked for: Optuna has no public getter of a live Trial, so one is bound to its id
        self.trial = optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, number))
        # Optuna prunes single-objective studies only; multi-objective trials just run to the end
        self.prunable = len(study.directions) == 1
        self.stability = None
        self.gate_prunes = pruner_conf.get("name") == "gate"  # a stop on the run's own gate verdict prunes
        if pruner_conf.get("name") == "stability":
            self.stability = StabilityRule(saturation_critical, pruner_conf.get("saturation_warmup_steps", 1000),
                                           pruner_conf.get("saturation_patience", 2))

    @classmethod
    def from_environment(cls, study_name: str, number: int, saturation_critical: float) -> TrialReporter:
        url = os.environ.get(STORAGE_ENV)
        if not url:
            raise RuntimeError(f"trial.study_name is set but {STORAGE_ENV} is not: trial.* keys are set by the Optuna "
                               "sweeper (hydra/sweeper=optuna), not by hand")
        return cls(url, study_name, number, saturation_critical)

    def report(self, step: int, eval_return: float) -> None:
        """Intermediate value at ``step``; raises optuna.TrialPruned when the pruner says stop."""
        if not self.prunable:
            return
        self.trial.report(eval_return, step)
        if self.trial.should_prune():
            raise self._prune(f"pruned at step {step} with eval/return {eval_return:.2f}")

    def check(self, step: int, latest: Mapping[str, float]) -> None:
        """The stability pruner's test of the values just flushed; raises optuna.TrialPruned to stop the run."""
        reason = self.stability.verdict(step, latest) if self.stability is not None else None
        if reason is not None:
            raise self._prune(reason)

    def state_dict(self) -> dict[str, Any]:
        """What the run's checkpoint keeps of this reporter (the stability rule's counters)."""
        return {"stability": self.stability.state_dict()} if self.stability is not None else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.stability is not None and "stability" in state:
            self.stability.load_state_dict(state["stability"])

    def outcome(self, error: BaseException) -> BaseException:
        """What the job raises for ``error``: under the stability pruner a stop on non-finite values prunes, under the
        gate pruner a stop on the run's gate verdict does (with the verdict as the reason)."""
        from td3exp.self_gate import GateStopped

        if self.stability is not None and isinstance(error, NonFiniteError):
            return self._prune(f"stopped on non-finite values: {error}")
        if self.gate_prunes and isinstance(error, GateStopped):
            return self._prune(f"gate {error.verdict} at step {error.step}: {error.reason}")
        return error

    def finish(self, summary: dict[str, Any]) -> None:
        """The run's summary (objectives of multi-objective studies; how the sweeper knows the job completed)."""
        self.trial.set_user_attr("summary", summary)

    def _prune(self, reason: str) -> BaseException:
        self.trial.set_user_attr("pruned", reason)
        return self._optuna.TrialPruned(reason)
