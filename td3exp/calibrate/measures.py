"""Measures of a binary stop rule and of a continuous score against an outcome: Wilson intervals for rates, ROC-AUC
(Mann-Whitney, ties counted half), a bootstrap CI that resamples conditions (runs of one condition share their
configuration and are not independent draws), and the leave-one-condition-out AUC."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

Z95 = 1.959963984540054


@dataclass
class Rate:
    k: float
    n: float
    low: float | None = None  # Wilson 95% interval; None for expected (not observed) counts
    high: float | None = None

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n > 0 else None


def wilson(k: int, n: int) -> Rate:
    """Wilson score 95% interval (Wilson, 1927): sound at small n and at rates of 0 or 1, unlike the normal one."""
    if n == 0:
        return Rate(k, n)
    p = k / n
    denominator = 1 + Z95**2 / n
    center = (p + Z95**2 / (2 * n)) / denominator
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denominator
    return Rate(k, n, float(max(0.0, center - half)), float(min(1.0, center + half)))


def auc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """P(score of a failure > score of a success) + P(tie) / 2; None without both classes.  Infinite scores rank
    above every finite one and tie with each other."""
    s, y = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(s)  # average ranks: ties count half
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass
class Interval:
    low: float | None
    high: float | None
    note: str  # how it was obtained, or why it was not


def _resamples(clusters: np.ndarray, reps: int, seed: int) -> list[np.ndarray]:
    """Run indices of ``reps`` bootstrap resamples of conditions (with replacement, all runs of a drawn condition
    together)."""
    names = sorted(set(clusters))
    members = [np.flatnonzero(clusters == name) for name in names]
    rng = np.random.default_rng(seed)
    return [np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))]) for _ in range(reps)]


def _percentile_interval(values: list[float], conditions: int, reps: int) -> Interval:
    if not values:
        return Interval(None, None, "not computable: no resample holds both failures and successes")
    low, high = np.percentile(values, [2.5, 97.5])
    note = f"{conditions} conditions, {len(values)} of {reps} resamples usable"
    if low == high:  # every resample agrees: few conditions, not certainty
        note += f"; every usable resample gives {low:.3g}: {conditions} conditions cannot bound it"
    return Interval(float(low), float(high), note)


def clustered_auc_ci(scores: Sequence[float], positive: Sequence[bool], clusters: Sequence[str], reps: int = 2000,
                     seed: int = 0) -> Interval:
    """Percentile 95% CI of the AUC over bootstrap resamples of conditions; resamples holding one class only are
    dropped and counted."""
    s, y, c = np.asarray(scores, float), np.asarray(positive, bool), np.asarray(clusters, dtype=object)
    conditions = len(set(c))
    if conditions < 2:
        return Interval(None, None, f"not computable: {conditions} condition (needs at least 2)")
    values = [v for index in _resamples(c, reps, seed) if (v := auc(s[index], y[index])) is not None]
    return _percentile_interval(values, conditions, reps)


def clustered_auc_difference_ci(a: Sequence[float], b: Sequence[float], positive: Sequence[bool],
                                clusters: Sequence[str], reps: int = 2000, seed: int = 0) -> Interval:
    """Percentile 95% CI of AUC(a) - AUC(b), two scores of the same runs, over the same resamples of conditions
    (paired: both AUCs from each resample)."""
    sa, sb, y = np.asarray(a, float), np.asarray(b, float), np.asarray(positive, bool)
    c = np.asarray(clusters, dtype=object)
    conditions = len(set(c))
    if conditions < 2:
        return Interval(None, None, f"not computable: {conditions} condition (needs at least 2)")
    values = []
    for index in _resamples(c, reps, seed):
        first, second = auc(sa[index], y[index]), auc(sb[index], y[index])
        if first is not None and second is not None:
            values.append(first - second)
    return _percentile_interval(values, conditions, reps)


def leave_one_condition_out(scores: Sequence[float], positive: Sequence[bool], clusters: Sequence[str]
                            ) -> tuple[float, float, int] | None:
    """AUC on all runs but one condition's, for each condition in turn: (min, median, conditions usable); None with
    fewer than 2 conditions or when no held-out set keeps both classes.  The gate has no fitted parameters, so this
    asks whether one condition alone makes the AUC."""
    s, y, c = np.asarray(scores, float), np.asarray(positive, bool), np.asarray(clusters, dtype=object)
    names = sorted(set(c))
    if len(names) < 2:
        return None
    values = [v for name in names if (v := auc(s[c != name], y[c != name])) is not None]
    if not values:
        return None
    return float(np.min(values)), float(np.median(values)), len(values)
