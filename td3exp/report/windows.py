"""Update metrics as windows of updates, so the gate reads runs logged per window and runs logged per update alike.

A run logged per window writes, for each update metric ``family/name``, the window mean under that tag, the largest
absolute value under ``family_max/name``, and the window's update counts under ``window/updates`` (critic updates)
and ``window/actor_updates`` (actor updates).  A run logged per update (no ``window/*`` tags) is read as windows of
one update each.  From windows:
- means are exact (window means weighted by their update counts);
- maxima are exact (the largest ``_max`` twin; for windows of one, the largest absolute value);
- medians are approximated by the count-weighted median of window means (exact for windows of one), and so are the
  warm-up and first/last-10% cuts, which fall on window boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from td3exp.metrics import (
    ACTOR_UPDATE_TAGS,
    UPDATE_FAMILIES,
    WINDOW_ACTOR_UPDATES,
    WINDOW_UPDATES,
    is_update_metric,
    max_twin,
)
from td3exp.report.runs import Run


def is_max_twin(tag: str) -> bool:
    family = tag.split("/", 1)[0]
    return family.endswith("_max") and family[: -len("_max")] in UPDATE_FAMILIES


@dataclass
class Windows:
    steps: np.ndarray
    means: np.ndarray
    counts: np.ndarray  # updates in each window (1 for a run logged per update)
    peaks: np.ndarray  # largest absolute value in each window

    def __len__(self) -> int:
        return len(self.means)

    @property
    def updates(self) -> int:
        return int(self.counts.sum())

    def select(self, mask: np.ndarray) -> Windows:
        return Windows(self.steps[mask], self.means[mask], self.counts[mask], self.peaks[mask])

    @classmethod
    def per_update(cls, values: np.ndarray) -> Windows:
        """Windows of one update each (a run logged per update)."""
        values = np.asarray(values, dtype=float)
        return cls(np.arange(len(values)), values, np.ones(len(values)), np.abs(values))


def windows(run: Run, tag: str) -> Windows | None:
    """The update metric's windows, without windows that held no update; None when the run did not log it."""
    series = run.scalars.get(tag)
    if series is None or len(series.values) == 0:
        return None
    if not is_update_metric(tag):
        raise ValueError(f"{tag} is not an update metric; windows exist for {', '.join(UPDATE_FAMILIES)}")
    counter = WINDOW_ACTOR_UPDATES if tag in ACTOR_UPDATE_TAGS else WINDOW_UPDATES
    counts = _aligned(run, counter, series.steps, default=1.0)
    peaks = _aligned(run, max_twin(tag), series.steps, default=np.nan)
    peaks = np.where(np.isnan(peaks) & ~np.isnan(series.values), np.abs(series.values), peaks)
    result = Windows(series.steps, series.values, counts, peaks)
    return result.select(counts > 0)


def _aligned(run: Run, tag: str, steps: np.ndarray, default: float) -> np.ndarray:
    """``tag``'s values at ``steps`` (``default`` where it has none: a point without a count is a window of one)."""
    out = np.full(len(steps), default, dtype=float)
    series = run.scalars.get(tag)
    if series is None or len(series.steps) == 0:
        return out
    order = np.argsort(series.steps, kind="stable")
    known, values = series.steps[order], series.values[order]
    index = np.clip(np.searchsorted(known, steps), 0, len(known) - 1)
    hit = known[index] == steps
    out[hit] = values[index[hit]]
    return out


def weighted_mean(w: Windows) -> float:
    return float(np.sum(w.means * w.counts) / np.sum(w.counts))


def weighted_median(values: np.ndarray, counts: np.ndarray) -> float:
    """Median of values repeated ``counts`` times; equal to ``np.median`` when every count is 1."""
    order = np.argsort(values, kind="stable")
    values, cumulative = values[order], np.cumsum(counts[order])
    half = cumulative[-1] / 2
    i = int(np.searchsorted(cumulative, half))  # first value whose cumulative count reaches half
    if cumulative[i] == half and i + 1 < len(values):  # an even split falls between two values: their midpoint
        return float((values[i] + values[i + 1]) / 2)
    return float(values[i])


def median(w: Windows) -> float:
    return weighted_median(w.means, w.counts)


def peak(w: Windows) -> float:
    return float(np.max(w.peaks))


def after_warmup(w: Windows, fraction: float) -> Windows:
    """Windows that start after the first ``fraction`` of the updates."""
    starts = np.cumsum(w.counts) - w.counts
    return w.select(starts >= int(w.updates * fraction))


def first_and_last(w: Windows, fraction: float) -> tuple[Windows, Windows]:
    """Windows holding the first and the last ``fraction`` of the updates (at least one update each)."""
    k = max(1, int(w.updates * fraction))
    ends = np.cumsum(w.counts)
    starts = ends - w.counts
    return w.select(starts < k), w.select(ends > w.updates - k)
