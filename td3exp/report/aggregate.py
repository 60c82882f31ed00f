"""Seed aggregates per configuration: interquartile mean and stratified-bootstrap 95% CI (rliable; Agarwal et al.,
"Deep RL at the Edge of the Statistical Precipice", NeurIPS 2021)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np

from td3exp.report.runs import Run, seed_free_config


@dataclass
class Aggregate:
    label: str
    metric: str
    n_runs: int
    iqm: float
    ci_low: float
    ci_high: float


def condition_labels(runs: list[Run]) -> list[str]:
    """Each run's condition: the label of the first run with the same seed-free config (a control cell shared by two
    sweeps is one condition, whatever overrides each sweep wrote)."""
    labels: dict[str, str] = {}
    return [labels.setdefault(json.dumps(seed_free_config(r.config), sort_keys=True, default=str), r.label)
            for r in runs]


def group_by_config(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs that differ only in seed share a group. A repeat of a seed already in its group (the same run twice, e.g.
    a control cell in two sweeps) is counted once."""
    groups: dict[str, list[Run]] = {}
    for run, label in zip(runs, condition_labels(runs), strict=True):
        group = groups.setdefault(label, [])
        if run.config.get("seed") not in {r.config.get("seed") for r in group}:
            group.append(run)
    return groups


def final_eval_return(run: Run) -> float | None:
    values = run.values("eval/return")
    return None if values is None else float(values[-1])


def mean_actor_cnn_grad(run: Run) -> float | None:
    values = run.values("grad/actor_cnn")
    return None if values is None else float(np.mean(values))


METRICS = {"final eval/return": final_eval_return, "mean grad/actor_cnn": mean_actor_cnn_grad}


def aggregate(runs: list[Run], reps: int = 5000, seed: int = 0) -> list[Aggregate]:
    from rliable import library as rly  # heavy import: only when aggregating
    from rliable import metrics

    results = []
    for label, group in group_by_config(runs).items():
        for metric, extract in METRICS.items():
            scores = np.array([v for v in map(extract, group) if v is not None and np.isfinite(v)])
            if len(scores) == 0:
                continue
            # one task: a (runs x 1) score matrix; the stratified bootstrap resamples runs
            with warnings.catch_warnings():  # arch deprecates RandomState, which rliable still passes
                warnings.simplefilter("ignore", FutureWarning)
                point, interval = rly.get_interval_estimates(
                    {label: scores[:, None]}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps,
                    random_state=np.random.RandomState(seed),
                )
            results.append(Aggregate(label, metric, len(scores), float(point[label][0]),
                                     float(interval[label][0, 0]), float(interval[label][1, 0])))
    return results
