"""optimization_results.yaml: the best trial, or the Pareto front of a multi-objective study."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import optuna
from omegaconf import OmegaConf


def write_results(study: optuna.Study, sweep_dir: Path) -> Path:
    states = Counter(t.state.name for t in study.get_trials(deepcopy=False))
    results: dict = {
        "name": "optuna",
        "study_name": study.study_name,
        "directions": [d.name.lower() for d in study.directions],
        "trials": dict(states),
    }
    if states.get("COMPLETE"):
        if len(study.directions) == 1:
            results["best_params"] = study.best_trial.params
            results["best_value"] = study.best_value
            results["best_trial"] = study.best_trial.number
        else:
            results["pareto_front"] = [
                {"trial": t.number, "params": t.params, "values": list(t.values)} for t in study.best_trials
            ]
    path = sweep_dir / "optimization_results.yaml"
    OmegaConf.save(OmegaConf.create(results), path)
    return path
