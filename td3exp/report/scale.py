"""The return scale of a run, for the gate's ``auto`` limits on |Q| and on the critic loss.

A critic whose |Q| exceeds the largest discounted return the task can pay has diverged ("soft divergence": van Hasselt
et al., 2018, "Deep Reinforcement Learning and the Deadly Triad").  That bound is r_max / (1 - gamma):
- a bounded reward (``reward.normalize`` clip or running: every reward lies in +-``reward.clip_range``) gives it
  exactly, with r_max = clip_range;
- an unbounded one (``none``: CarRacing's weighted reward, a MuJoCo task's own reward) is estimated from the episodes
  the run has finished: r_max ~ the largest |episode/return| / episode/length (the mean reward per step of the
  best-paid episode), times the gate's ``scale_slack`` because later episodes may pay more per step.
A fixed limit cannot serve both: 200 NO-GOs a healthy Hopper run, whose Q values sit in the hundreds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from td3exp.report.runs import Run

BOUNDED = ("clip", "running")


@dataclass
class ValueScale:
    value: float  # r_max / (1 - gamma): the largest plausible |discounted return| (before any slack)
    bounded: bool  # r_max is a bound of the reward (clip, running), not an estimate from returns
    reason: str  # how it was derived, for the criterion's threshold text


def value_scale(run: Run) -> ValueScale | str:
    """The run's value scale, or why it has none (a one-line reason)."""
    gamma = (run.config.get("agent") or {}).get("gamma")
    if gamma is None or not 0 <= float(gamma) < 1:
        return f"auto limit needs agent.gamma in [0, 1) in the run's config (got {gamma})"
    gamma = float(gamma)
    reward = run.config.get("reward") or {}
    normalize, clip_range = reward.get("normalize"), reward.get("clip_range")
    if normalize in BOUNDED and clip_range is not None:
        r_max = float(clip_range)
        return ValueScale(r_max / (1 - gamma), True,
                          f"reward.normalize={normalize} bounds |r| by reward.clip_range {r_max:g}: "
                          f"{r_max:g} / (1 - {gamma:g})")
    per_step = largest_reward_per_step(run)
    if per_step is None:
        return "auto limit: no finished episode (episode/return with episode/length) to scale it by yet"
    return ValueScale(per_step / (1 - gamma), False,
                      f"reward not bounded (reward.normalize={normalize}): largest |episode/return| / episode/length "
                      f"seen by step {run.last_step:,} {per_step:.4g} / (1 - {gamma:g})")


def largest_reward_per_step(run: Run) -> float | None:
    """max over finished episodes of |episode/return| / episode/length (pairs logged at the same step)."""
    returns, lengths = run.scalars.get("episode/return"), run.scalars.get("episode/length")
    if returns is None or lengths is None or len(returns.steps) == 0 or len(lengths.steps) == 0:
        return None
    if np.array_equal(returns.steps, lengths.steps):
        r, n = returns.values, lengths.values
    else:  # pair by step where the two series differ (one episode per step)
        common, ri, li = np.intersect1d(returns.steps, lengths.steps, return_indices=True)
        if len(common) == 0:
            return None
        r, n = returns.values[ri], lengths.values[li]
    ok = np.isfinite(r) & np.isfinite(n) & (n > 0)
    if not np.any(ok):
        return None
    return float(np.max(np.abs(r[ok]) / n[ok]))


@dataclass
class Limit:
    value: float
    text: str  # the threshold as the report shows it: the number and which limit applied, and why


def q_limit(run: Run, setting: float | str, slack: float) -> Limit | str:
    """|Q| limit: a fixed number, or ``auto``: the value scale (bounded reward) or slack x the value scale."""
    if setting != "auto":
        return Limit(float(setting), f"< {float(setting):g} (fixed)")
    scale = value_scale(run)
    if isinstance(scale, str):
        return scale
    if scale.bounded:
        return Limit(scale.value, f"< {scale.value:.4g} (auto: {scale.reason})")
    return Limit(slack * scale.value, f"< {slack * scale.value:.4g} (auto: slack {slack:g} x {scale.reason})")


def critic_loss_limit(run: Run, setting: float | str, fraction: float) -> Limit | str:
    """Mean critic-loss limit: fixed, or ``auto``: the RMS TD error per critic below ``fraction`` x the value scale.
    loss/critic sums the two critics' MSEs, so the limit is 2 x (fraction x scale)^2."""
    if setting != "auto":
        return Limit(float(setting), f"< {float(setting):g} (fixed)")
    scale = value_scale(run)
    if isinstance(scale, str):
        return scale
    limit = 2 * (fraction * scale.value) ** 2
    return Limit(limit, f"< {limit:.4g} (auto: RMS TD error per critic < {fraction:g} x value scale "
                        f"{scale.value:.4g}, i.e. 2 x ({fraction:g} x {scale.value:.4g})^2; {scale.reason})")
