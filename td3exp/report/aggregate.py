"""Runs grouped by condition: per-condition statistics, provenance warnings, and comparisons between conditions that
differ in one config value (stated as distinguishable from seed noise only when the data carry it)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from td3exp.report.gate import Verdict
from td3exp.report.runs import UNKNOWN, Run, seed_free_config
from td3exp.report.stats import (
    ALPHA,
    MIN_EVAL_EPISODES,
    MIN_RUNS,
    Estimate,
    GoCounts,
    Improvement,
    PairedTest,
    compare_go_counts,
    compare_paired_go,
    estimate,
    paired_sign_test,
    probability_of_improvement,
)
from td3exp.report.windows import weighted_mean, windows


def condition_labels(runs: list[Run]) -> list[str]:
    """Each run's condition: the most common label among runs with the same seed-free config (a control cell shared
    by two sweeps is one condition, named as most of its runs name it; the first such label on a tie)."""
    keys = [json.dumps(seed_free_config(r.config), sort_keys=True, default=str) for r in runs]
    labels: dict[str, Counter[str]] = {}
    for key, run in zip(keys, runs, strict=True):
        labels.setdefault(key, Counter())[run.label] += 1
    return [labels[key].most_common(1)[0][0] for key in keys]


def group_by_config(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs that differ only in seed share a group, in seed order. A repeat of a seed already in its group (the same
    run twice, e.g. a control cell in two sweeps) is counted once."""
    groups: dict[str, list[Run]] = {}
    for run, label in zip(runs, condition_labels(runs), strict=True):
        group = groups.setdefault(label, [])
        if run.seed not in {r.seed for r in group}:
            group.append(run)
    return {label: sorted(group, key=seed_order) for label, group in groups.items()}


def seed_order(run: Run) -> tuple[int, str]:
    return (run.seed, "") if isinstance(run.seed, int) else (0, str(run.seed))


def final_eval_return(run: Run) -> float | None:
    """The mean native return over the run's last evaluation (``eval.episodes`` episodes)."""
    values = run.values("eval/return")
    return None if values is None else float(values[-1])


def mean_actor_cnn_grad(run: Run) -> float | None:
    w = windows(run, "grad/actor_cnn")
    return None if w is None else weighted_mean(w)


METRICS: dict[str, Callable[[Run], float | None]] = {
    "final eval/return": final_eval_return, "mean grad/actor_cnn": mean_actor_cnn_grad,
}


@dataclass
class MetricSummary:
    label: str
    metric: str
    runs: list[Run]
    values: list[float | None]  # per run, seed order; None where the run lacks the metric
    estimate: Estimate | None
    flags: list[str] = field(default_factory=list)


def eval_episodes(run: Run) -> Any:
    return (run.config.get("eval") or {}).get("episodes")


def summarize(runs: list[Run], reps: int = 5000) -> list[MetricSummary]:
    summaries = []
    for label, group in group_by_config(runs).items():
        for metric, extract in METRICS.items():
            values = [extract(r) for r in group]
            if all(v is None for v in values):
                continue  # no run has it (no actor CNN under encoder=mlp or a shared encoder): nothing to summarize
            finite = np.array([v for v in values if v is not None and np.isfinite(v)])
            flags = []
            if len(finite) < MIN_RUNS:
                runs_text = f"{len(finite)} run{'s' * (len(finite) != 1)}"
                flags.append(f"{runs_text} (< {MIN_RUNS}): too few for an interval estimate")
            episodes = sorted({e for e in map(eval_episodes, group) if e is not None})
            if metric == "final eval/return" and episodes and min(episodes) < MIN_EVAL_EPISODES:
                flags.append(f"{min(episodes)} eval episode(s) per run (< {MIN_EVAL_EPISODES}): too few to compare")
            summaries.append(MetricSummary(label, metric, group, values,
                                           estimate(finite, reps) if len(finite) else None, flags))
    return summaries


def provenance_warnings(runs: list[Run]) -> list[str]:
    """One line per condition whose runs come from different devices or commits."""
    lines = []
    for label, group in group_by_config(runs).items():
        mixed = []
        for what, key in (("devices", lambda r: r.device), ("commits", lambda r: r.commit)):
            seeds: dict[str, list[str]] = {}
            for run in group:
                seeds.setdefault(key(run), []).append(str(run.seed))
            if len(seeds) > 1 and set(seeds) != {UNKNOWN}:
                mixed.append(f"{what} " + "; ".join(f"{k}: seed {', '.join(s)}" for k, s in seeds.items()))
        if mixed:
            lines.append(f"`{label or 'defaults'}` mixes " + " and ".join(mixed))
    return lines


@dataclass
class Comparison:
    a: str
    b: str
    difference: str
    go: GoCounts
    returns: tuple[float, float] | None  # mean final eval/return of A and of B
    improvement: Improvement | None  # runs without matching seeds only
    conclusion: str
    paired_returns: PairedTest | None = None  # seed-matched runs: the sign test of their final returns


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def compare(verdicts: list[Verdict], reps: int = 2000) -> list[Comparison]:
    """Every pair of conditions whose configs differ in exactly one value: seed pair by seed pair where they share
    seeds (only the shared seeds count), as independent runs where they share none."""
    by_run = {id(v.run): v for v in verdicts}
    groups = list(group_by_config([v.run for v in verdicts]).items())
    flat = [_flat(seed_free_config(runs[0].config)) for _, runs in groups]
    out = []
    for i, (label_a, runs_a) in enumerate(groups):
        for j in range(i + 1, len(groups)):
            label_b, runs_b = groups[j]
            keys = [k for k in flat[i].keys() | flat[j].keys() if flat[i].get(k) != flat[j].get(k)]
            if len(keys) != 1:
                continue
            difference = f"{keys[0]}: {flat[i].get(keys[0])} vs {flat[j].get(keys[0])}"
            seeds = {r.seed for r in runs_a} & {r.seed for r in runs_b}
            a, b = ([r for r in runs if not seeds or r.seed in seeds] for runs in (runs_a, runs_b))  # seed order
            go_a, go_b = ([by_run[id(r)].verdict == "GO" for r in runs] for runs in (a, b))
            go = compare_paired_go(go_a, go_b) if seeds else compare_go_counts(sum(go_a), len(a), sum(go_b), len(b))
            out.append(_comparison(label_a, a, label_b, b, difference, go, reps))
    return out


def _comparison(label_a: str, runs_a: list[Run], label_b: str, runs_b: list[Run], difference: str, go: GoCounts,
                reps: int) -> Comparison:
    finals_a, finals_b = [final_eval_return(r) for r in runs_a], [final_eval_return(r) for r in runs_b]
    returns_a = np.array([v for v in finals_a if v is not None])
    returns_b = np.array([v for v in finals_b if v is not None])
    means = (float(np.mean(returns_a)), float(np.mean(returns_b))) if len(returns_a) and len(returns_b) else None
    paired, improvement = None, None
    if go.paired is not None:
        pairs = [(a, b) for a, b in zip(finals_a, finals_b, strict=True) if a is not None and b is not None]
        paired = paired_sign_test([a for a, _ in pairs], [b for _, b in pairs]) if pairs else None
    else:
        improvement = probability_of_improvement(returns_a, returns_b, reps)
    test = f"sign test on {go.paired.n} seed pairs" if go.paired is not None else "Fisher"
    if go.distinguishable:
        verdicts = f"GO counts differ beyond seed noise ({test} p = {go.p:.2g} < {ALPHA})"
    elif go.go_a * go.n_b == go.go_b * go.n_a and go.paired is None:
        verdicts = "same share of GO runs"
    elif go.paired is not None and go.paired.wins == go.paired.losses == 0:
        verdicts = "same GO outcome in every seed pair"
    elif go.smallest_p >= ALPHA:
        runs_text = f"{go.paired.n} seed pairs" if go.paired is not None else f"{go.n_a} vs {go.n_b} runs"
        verdicts = (f"GO counts not distinguishable from seed noise: {runs_text} cannot give p < {ALPHA} "
                    f"(floor p = {go.smallest_p:.2g})")
    else:
        verdicts = f"GO counts not distinguishable from seed noise ({test} p = {go.p:.2g})"
    episodes = [e for e in map(eval_episodes, runs_a + runs_b) if e is not None]
    if episodes and min(episodes) < MIN_EVAL_EPISODES and (paired or improvement):
        returns = f"final returns not compared (fewer than {MIN_EVAL_EPISODES} eval episodes per run)"
    elif paired is not None:
        floor = f"floor p = {paired.floor:.2g} with {paired.n} pairs"
        returns = (f"final returns differ beyond seed noise ({paired}; {floor})" if paired.distinguishable
                   else f"final returns not distinguishable from seed noise ({paired}; {floor})")
    elif improvement is None:
        returns = f"final returns not compared (no seed pairs and fewer than {MIN_RUNS} runs per condition)"
    elif improvement.distinguishable:
        returns = f"final returns differ beyond seed noise ({improvement})"
    else:
        returns = f"final returns not distinguishable from seed noise ({improvement})"
    return Comparison(label_a, label_b, difference, go, means, improvement, f"{verdicts}; {returns}", paired)
