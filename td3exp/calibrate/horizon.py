"""One horizon: each run judged on its data cut at the horizon, against its outcome from the whole run; the gate's
NO-GO as a stop rule beside the baselines (early-return pruning, always-GO, a random gate with the gate's NO-GO
rate), each summarized by the same numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from td3exp.calibrate.measures import (
    Interval,
    Rate,
    auc,
    clustered_auc_ci,
    clustered_auc_difference_ci,
    leave_one_condition_out,
    wilson,
)
from td3exp.report.criteria import evaluate
from td3exp.report.gate import GateConfig
from td3exp.report.runs import Run, until


@dataclass
class Judged:
    """One run at one horizon."""

    run: Run
    name: str  # unique within the input
    horizon: int
    failed: bool  # the eventual outcome (whole run)
    verdict: str  # the gate's verdict on the run cut at the horizon
    score: float | None  # the gate's score on that cut
    pruned: bool  # early return: the median rule would stop the run at the horizon
    margin: float | None  # median of the others' eval/return at that step - this run's best so far (None: no rule)
    failing: str = ""  # the gate's failing criteria at the horizon, with their values
    why_failed: str = ""  # the outcome conditions that held over the whole run

    @property
    def stopped(self) -> bool:  # the gate stops a run on NO-GO only (HOLD: not cleared, not stopped)
        return self.verdict == "NO-GO"

    @property
    def remaining(self) -> int:  # agent steps a stop at the horizon saves
        return self.run.last_step - self.horizon


def median_rule(run: Run, others: list[Run], horizon: int) -> float | None:
    """Optuna's MedianPruner (PercentilePruner at 50, maximizing), on eval/return as the intermediate values: at the
    run's latest evaluation step s <= horizon, prune when its best value so far (NaN ignored) is below the median of
    the other runs' values at step s (NaN ignored; none there: no pruning); a run whose every value so far is NaN is
    pruned, as Optuna does.  Returns median - best (prune when > 0; +inf for an all-NaN run), or None when the rule
    cannot apply.  Optuna's n_startup_trials / warm-up are not modelled: every other run has finished."""
    evals = run.scalars.get("eval/return")
    if evals is None:
        return None
    seen = evals.steps <= horizon
    if not np.any(seen):
        return None
    values = evals.values[seen]
    if np.all(np.isnan(values)):
        return math.inf
    step, best = int(evals.steps[seen].max()), float(np.nanmax(values))
    at_step = []
    for other in others:
        series = other.scalars.get("eval/return")
        if series is not None:
            at_step += [float(v) for v in series.values[series.steps == step] if not math.isnan(v)]
    if not at_step:
        return None
    median = float(np.median(at_step))
    if median == best:  # equal, both possibly infinite: not below the median
        return 0.0
    return median - best


def judge(runs: list[Run], names: list[str], failed: list[bool], gate: GateConfig, horizon: int,
          why_failed: list[str] | None = None) -> list[Judged]:
    """Runs longer than the horizon (a run that ended by then cannot be stopped there), judged at the horizon."""
    out = []
    for i, run in enumerate(runs):
        if run.last_step <= horizon:
            continue
        verdict = evaluate(until(run, horizon), gate)
        margin = median_rule(run, runs[:i] + runs[i + 1:], horizon)
        failing = "; ".join(f"{c.name} {c.value}" for c in verdict.failing)
        out.append(Judged(run, names[i], horizon, failed[i], verdict.verdict, verdict.score,
                          margin is not None and margin > 0, margin, failing, why_failed[i] if why_failed else ""))
    return out


@dataclass
class Summary:
    horizon: int
    method: str
    runs: int
    failures: int
    tp: float  # failures stopped (expected counts for the random gate)
    fp: float  # successes stopped
    fn: float  # failures not stopped
    tn: float  # successes not stopped
    sensitivity: Rate
    specificity: Rate
    ppv: Rate
    npv: Rate
    stop_rate: float
    compute_saved: float | None  # steps saved on stopped failures / all failures' steps
    successes_lost: float | None  # successes stopped / successes
    auc: float | None = None
    auc_runs: int = 0  # runs with a score
    auc_ci: Interval | None = None
    loco: tuple[float, float, int] | None = None  # leave-one-condition-out AUC: min, median, conditions usable
    # the gate's row only: its AUC minus early return's on the runs both score, with a paired clustered CI
    auc_minus_early: float | None = None
    auc_minus_early_runs: int = 0
    auc_minus_early_ci: Interval | None = None


def _saved(judged: list[Judged], stopped: list[float]) -> float | None:
    total = sum(j.run.last_step for j in judged if j.failed)
    if total == 0:
        return None
    return sum(share * j.remaining for j, share in zip(judged, stopped, strict=True) if j.failed) / total


def summarize(judged: list[Judged], method: str, stopped: list[bool]) -> Summary:
    y = [j.failed for j in judged]
    tp = sum(s and f for s, f in zip(stopped, y, strict=True))
    fp = sum(s and not f for s, f in zip(stopped, y, strict=True))
    fn, tn = sum(y) - tp, len(y) - sum(y) - fp
    successes = len(y) - sum(y)
    return Summary(judged[0].horizon if judged else 0, method, len(y), sum(y), tp, fp, fn, tn,
                   wilson(tp, tp + fn), wilson(tn, tn + fp), wilson(tp, tp + fp), wilson(tn, tn + fn),
                   (tp + fp) / len(y) if y else 0.0, _saved(judged, [float(s) for s in stopped]),
                   fp / successes if successes else None)


def random_gate(judged: list[Judged], rate: float) -> Summary:
    """Expected values of a gate that stops each run with probability ``rate``, blind to the run."""
    n, failures = len(judged), sum(j.failed for j in judged)
    successes = n - failures
    tp, fp = rate * failures, rate * successes
    return Summary(judged[0].horizon if judged else 0, "random (same NO-GO rate, expected)", n, failures, tp, fp,
                   failures - tp, successes - fp, Rate(tp, failures), Rate(successes - fp, successes),
                   Rate(tp, tp + fp), Rate(successes - fp, n - tp - fp), rate, _saved(judged, [rate] * n),
                   rate if successes else None, auc=0.5 if failures and successes else None, auc_runs=n)


def horizon_summaries(judged: list[Judged], reps: int, seed: int = 0) -> list[Summary]:
    if not judged:
        return []
    gate = summarize(judged, "gate (NO-GO stops)", [j.stopped for j in judged])
    scored = [(j.score, j.failed, j.run.label) for j in judged if j.score is not None]
    scores, y, conditions = [s for s, _, _ in scored], [f for _, f, _ in scored], [c for _, _, c in scored]
    gate.auc, gate.auc_runs = auc(scores, y), len(scored)
    gate.auc_ci = clustered_auc_ci(scores, y, conditions, reps, seed)
    gate.loco = leave_one_condition_out(scores, y, conditions)
    early = summarize(judged, "early return (median rule)", [j.pruned for j in judged])
    ranked = [(j, j.margin) for j in judged if j.margin is not None]
    margins, y_early = [m for _, m in ranked], [j.failed for j, _ in ranked]
    early_conditions = [j.run.label for j, _ in ranked]
    early.auc, early.auc_runs = auc(margins, y_early), len(ranked)
    early.auc_ci = clustered_auc_ci(margins, y_early, early_conditions, reps, seed)
    early.loco = leave_one_condition_out(margins, y_early, early_conditions)
    both = [(j, j.score, m) for j, m in ranked if j.score is not None]
    pair = ([s for _, s, _ in both], [m for _, _, m in both], [j.failed for j, _, _ in both],
            [j.run.label for j, _, _ in both])
    first, second = auc(pair[0], pair[2]), auc(pair[1], pair[2])
    if first is not None and second is not None:
        gate.auc_minus_early, gate.auc_minus_early_runs = first - second, len(both)
        gate.auc_minus_early_ci = clustered_auc_difference_ci(*pair, reps=reps, seed=seed)
    always = summarize(judged, "always GO", [False] * len(judged))
    return [gate, early, always, random_gate(judged, gate.stop_rate)]
