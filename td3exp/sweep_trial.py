"""The job's side of an Optuna sweep: report evaluations to its trial in the shared storage, so a pruner can stop it
from any process or machine, and leave the run's summary for multi-objective studies."""

from __future__ import annotations

from typing import Any

JOURNAL_SUFFIXES = (".log", ".journal")


def open_storage(url: str) -> Any:
    """An Optuna storage from a URL: an RDB URL (sqlite://, postgresql://, mysql://) or a journal file path
    (``*.log`` / ``*.journal``, for workers on several machines sharing a file system)."""
    import optuna

    if url.endswith(JOURNAL_SUFFIXES) and "://" not in url:
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(url))
    return optuna.storages.RDBStorage(url)


def make_pruner(conf: dict[str, Any]) -> Any:
    """Pruner from the sweeper's ``pruner`` config (also stored on the study as the ``pruner`` user attribute)."""
    import optuna

    name = conf.get("name", "median")
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=conf.get("n_startup_trials", 5),
                                           n_warmup_steps=conf.get("n_warmup_steps", 0))
    if name in ("hyperband", "successive_halving"):
        kind = optuna.pruners.HyperbandPruner if name == "hyperband" else optuna.pruners.SuccessiveHalvingPruner
        return kind(min_resource=conf.get("min_resource", "auto"), reduction_factor=conf.get("reduction_factor", 3))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"hydra.sweeper.pruner.name must be median, hyperband, successive_halving or none (got {name!r})")


class TrialReporter:
    def __init__(self, storage: str, study_name: str, trial_id: int) -> None:
        import optuna  # only sweep jobs need it

        self._optuna = optuna
        self.pruned = optuna.TrialPruned
        storage_ = open_storage(storage)
        study = optuna.load_study(study_name=study_name, storage=storage_)
        # the pruner the sweeper configured: should_prune() runs here, in the job
        study = optuna.load_study(study_name=study_name, storage=storage_,
                                  pruner=make_pruner(study.user_attrs.get("pruner", {"name": "none"})))
        self.trial = optuna.trial.Trial(study, trial_id)
        # Optuna prunes single-objective studies only; multi-objective trials just run to the end
        self.prunable = len(study.directions) == 1

    def report(self, step: int, eval_return: float) -> None:
        """Intermediate value at ``step``; raises optuna.TrialPruned when the pruner says stop."""
        if not self.prunable:
            return
        self.trial.report(eval_return, step)
        if self.trial.should_prune():
            raise self._optuna.TrialPruned(f"pruned at step {step} with eval/return {eval_return:.2f}")

    def finish(self, summary: dict[str, Any]) -> None:
        self.trial.set_user_attr("summary", summary)
