"""How a run counts its agent steps: cadences and the update-to-data ratio (``agent.utd_ratio``)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Schedule:
    """How a run counts.  Every count is in agent steps: transitions collected, summed over the parallel envs (a
    vector step of N envs is N agent steps).  A cadence (``log_every``, ``eval_every``, ``checkpoint_every``) fires
    on the vector step that reaches or passes each of its multiples; ``total_steps`` is a multiple of N.

    ``updates_per_step``: updates per collected transition once learning started (``agent.utd_ratio`` /
    ``agent.train_freq``; fractions such as 1/4 or 3/2 are exact).  Learning starts after ``start_steps`` (and
    once the replay holds a batch): after s agent steps the run has made floor((s - start) * updates_per_step)
    updates.  ``every_update``: log every update instead of one point per ``log_every`` window.
    """

    total_steps: int
    start_steps: int
    log_every: int
    eval_every: int
    eval_episodes: int
    checkpoint_every: int = 0  # 0: no periodic checkpoints (one is still written at the end and on a stop signal)
    updates_per_step: Fraction = Fraction(1)
    every_update: bool = False

    def updates_after(self, steps: int, learning_starts: int) -> int:
        """Updates a run has made once ``steps`` agent steps are collected, learning from ``learning_starts`` on."""
        return int(max(0, steps - learning_starts) * self.updates_per_step)


def updates_per_step(utd_ratio: float, train_freq: int) -> Fraction:
    """``agent.utd_ratio / agent.train_freq`` as an exact fraction: 0.1 updates per step must give one update every
    10 steps, not drift with float rounding."""
    return Fraction(utd_ratio).limit_denominator(1_000_000) / train_freq


def fires(every: int, before: int, after: int) -> bool:
    """Whether a cadence of ``every`` agent steps fires on the vector step from ``before`` to ``after``."""
    return every > 0 and after // every > before // every
