"""Statistics over runs, each labelled for what it is (Agarwal et al., "Deep RL at the Edge of the Statistical
Precipice", NeurIPS 2021; rliable): with at least ``MIN_RUNS`` runs the interquartile mean with a stratified-bootstrap
95% CI, and the probability of improvement between two conditions with its CI; with fewer runs, only each run's
value, their mean and their range.  Runs of two conditions that share their seeds are compared seed pair by seed pair
(an exact sign test; McNemar's exact test for GO outcomes): such runs share their seed's environment and
initialization and are not independent draws.  GO counts of runs without matching seeds use Fisher's exact test."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, fisher_exact

MIN_RUNS = 5  # below this a bootstrap CI is the range of the runs, not a 95% interval
MIN_EVAL_EPISODES = 5  # below this a final return is too noisy to compare conditions by
ALPHA = 0.05


@dataclass
class Estimate:
    """A summary of ``n`` runs' values: IQM with a 95% CI (n >= MIN_RUNS) or mean with the range (fewer runs)."""

    statistic: str  # "IQM" | "mean"
    point: float
    low: float
    high: float
    interval: str  # "95% CI" | "range"
    n: int

    def __str__(self) -> str:
        return f"{self.statistic} {self.point:.4g}, {self.interval} [{self.low:.4g}, {self.high:.4g}] (n={self.n})"


def _bootstrap(score_dict: dict, func, reps: int, seed: int) -> tuple[dict, dict]:
    from rliable import library as rly  # heavy import: only when there is something to bootstrap

    with warnings.catch_warnings():  # arch deprecates RandomState, which rliable still passes
        warnings.simplefilter("ignore", FutureWarning)
        return rly.get_interval_estimates(score_dict, func, reps=reps, random_state=np.random.RandomState(seed))


def estimate(values: np.ndarray, reps: int = 5000, seed: int = 0) -> Estimate:
    """IQM with a stratified-bootstrap 95% CI for enough runs; otherwise the mean and the range, called so."""
    values = np.asarray(values, dtype=float)
    if len(values) < MIN_RUNS:
        return Estimate("mean", float(np.mean(values)), float(np.min(values)), float(np.max(values)), "range",
                        len(values))
    from rliable import metrics

    # one task: a (runs x 1) score matrix; the stratified bootstrap resamples runs
    point, interval = _bootstrap({"x": values[:, None]}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps, seed)
    return Estimate("IQM", float(point["x"][0]), float(interval["x"][0, 0]), float(interval["x"][1, 0]), "95% CI",
                    len(values))


@dataclass
class Improvement:
    probability: float  # P(a run of A scores higher than a run of B)
    low: float
    high: float

    @property
    def distinguishable(self) -> bool:
        return not self.low <= 0.5 <= self.high

    def __str__(self) -> str:
        return f"P(A > B) {self.probability:.2f}, 95% CI [{self.low:.2f}, {self.high:.2f}]"


def probability_of_improvement(a: np.ndarray, b: np.ndarray, reps: int = 2000, seed: int = 0) -> Improvement | None:
    """rliable's probability of improvement of A over B with its stratified-bootstrap CI; None below MIN_RUNS."""
    if min(len(a), len(b)) < MIN_RUNS:
        return None
    from rliable import metrics

    scores = {"pair": [np.asarray(a, float)[:, None], np.asarray(b, float)[:, None]]}
    point, interval = _bootstrap(scores, metrics.probability_of_improvement, reps, seed)
    low, high = np.ravel(interval["pair"])
    return Improvement(float(np.ravel(point["pair"])[0]), float(low), float(high))


@dataclass
class PairedTest:
    """Exact two-sided sign test over seed pairs: only the pairs in which A and B differ count (for GO outcomes this
    is McNemar's exact test); ``n`` pairs cannot give a p below ``floor`` = 2 * 0.5**n (every pair one way)."""

    wins: int  # pairs in which A is ahead (GO where B is not, or a higher value)
    losses: int  # pairs in which B is ahead
    ties: int
    p: float

    @property
    def n(self) -> int:
        return self.wins + self.losses + self.ties

    @property
    def floor(self) -> float:
        return min(1.0, 2 * 0.5**self.n)

    @property
    def distinguishable(self) -> bool:
        return self.p < ALPHA

    def __str__(self) -> str:
        return f"B ahead in {self.losses}, A in {self.wins} of {self.n} seed pairs, sign test p = {self.p:.2g}"


def paired_sign_test(a: Sequence[float], b: Sequence[float]) -> PairedTest:
    """``a[i]`` and ``b[i]`` are the values (or GO outcomes) of the two conditions' runs with the same seed."""
    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    wins, losses = int(np.sum(diffs > 0)), int(np.sum(diffs < 0))
    p = binomtest(wins, wins + losses).pvalue if wins + losses else 1.0
    return PairedTest(wins, losses, len(diffs) - wins - losses, float(p))


@dataclass
class GoCounts:
    go_a: int
    n_a: int
    go_b: int
    n_b: int
    p: float  # two-sided: Fisher's exact test, or the sign test over seed pairs when ``paired`` is set
    smallest_p: float  # the smallest p these run counts can give (all GO against none)
    paired: PairedTest | None = None

    @property
    def distinguishable(self) -> bool:
        return self.p < ALPHA

    def __str__(self) -> str:
        counts = f"{self.go_a}/{self.n_a} vs {self.go_b}/{self.n_b} GO"
        if self.paired is None:
            return f"{counts}, Fisher p = {self.p:.2g}"
        t = self.paired
        return (f"{counts}, sign test on {t.n} seed pairs (B ahead in {t.losses}, A in {t.wins}) p = {t.p:.2g} "
                f"(floor {t.floor:.2g})")


def compare_go_counts(go_a: int, n_a: int, go_b: int, n_b: int) -> GoCounts:
    """GO counts of independent runs (no seed in common): Fisher's exact test."""
    p = fisher_exact([[go_a, n_a - go_a], [go_b, n_b - go_b]]).pvalue
    smallest = fisher_exact([[n_a, 0], [0, n_b]]).pvalue
    return GoCounts(go_a, n_a, go_b, n_b, float(p), float(smallest))


def compare_paired_go(go_a: Sequence[bool], go_b: Sequence[bool]) -> GoCounts:
    """GO outcomes of seed-matched runs (``go_a[i]`` and ``go_b[i]`` share a seed): McNemar's exact test."""
    test = paired_sign_test(go_a, go_b)
    return GoCounts(sum(go_a), len(go_a), sum(go_b), len(go_b), test.p, test.floor, test)


def performance_profiles(scores: dict[str, np.ndarray], taus: np.ndarray, reps: int = 2000
                         ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Fraction of runs scoring above each tau, per condition; CIs only for conditions with MIN_RUNS runs or more."""
    from rliable import library as rly

    matrices = {label: np.asarray(v, float)[:, None] for label, v in scores.items()}
    profiles = {label: rly.score_distributions(m, taus) for label, m in matrices.items()}
    enough = {label: m for label, m in matrices.items() if len(m) >= MIN_RUNS}
    cis: dict[str, np.ndarray] = {}
    if enough:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            _, cis = rly.create_performance_profile(enough, taus, reps=reps)
    return profiles, cis
