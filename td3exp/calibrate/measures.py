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


def clustered_auc_ci(scores: Sequence[float], positive: Sequence[bool], clusters: Sequence[str], reps: int = 2000,
                     seed: int = 0) -> Interval:
    """Percentile 95% CI of the AUC over bootstrap resamples of conditions (with replacement, all runs of a drawn
    condition together); resamples holding one class only are dropped and counted."""
    s, y, c = np.asarray(scores, float), np.asarray(positive, bool), np.asarray(clusters, dtype=object)
    names = sorted(set(c))
    if len(names) < 2:
        return Interval(None, None, f"not computable: {len(names)} condition (needs at least 2)")
    members = [np.flatnonzero(c == name) for name in names]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(reps):
        index = np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))])
        value = auc(s[index], y[index])
        if value is not None:
            values.append(value)
    if not values:
        return Interval(None, None, "not computable: no resample holds both failures and successes")
    low, high = np.percentile(values, [2.5, 97.5])
    return Interval(float(low), float(high), f"{len(names)} conditions, {len(values)} of {reps} resamples usable")


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
