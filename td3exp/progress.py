"""The progress bar's time estimate.  A run has two phases at very different speeds: the uniform-random warm-up
(``agent.start_steps``: collecting only, e.g. 65 steps/s on CarRacing) and learning (an update per step, a few per
second on a CPU).  tqdm's own estimate extrapolates the warm-up speed over the whole run, and so promises minutes for
a run of hours; this one prices each phase at its own speed.

Before the first update the learning phase is priced with one update timed at start-up on a throwaway copy of the
agent (``seconds_per_update``), assuming the envs do not step meanwhile (an upper bound: with ``env.vector=async``
they do); once learning runs, with the measured speed of the learning phase itself.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from fractions import Fraction

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from td3exp.agent import TD3Agent
from td3exp.replay import ReplayBatch


def remaining_seconds(
    step: int, total_steps: int, learning_starts: int, updates_per_step: Fraction | float,
    warmup_steps_per_second: float, seconds_per_update: float, learning_steps_per_second: float | None,
) -> float:
    """Seconds left of a run at ``step``; NaN while a speed it needs is unknown.

    ``warmup_steps_per_second``: agent steps per second while only collecting; ``seconds_per_update``: the start-up
    guess of one update's time; ``learning_steps_per_second``: agent steps per second measured while learning (None
    until measured; it replaces the guess).
    """
    if step >= learning_starts and learning_steps_per_second:
        return (total_steps - step) / learning_steps_per_second
    warmup_left = max(0, learning_starts - step)
    learning_left = total_steps - max(step, learning_starts)
    seconds_per_step = 1.0 / warmup_steps_per_second + float(updates_per_step) * seconds_per_update
    estimate = warmup_left / warmup_steps_per_second + learning_left * seconds_per_step
    return estimate if math.isfinite(estimate) else float("nan")


def format_duration(seconds: float) -> str:
    """``1h05m``, ``4m10s`` or ``?`` (not known yet)."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class PhaseClock:
    """When this session collected and learned: the speed of each phase, for ``remaining_seconds``."""

    def __init__(self, step: int, learning_starts: int) -> None:
        self.learning_starts = learning_starts
        self.started = (time.perf_counter(), step)
        self.learning_since: tuple[float, int] | None = (self.started if step >= learning_starts else None)

    def observe(self, step: int) -> None:
        """Call after each vector step, at agent step ``step``."""
        if self.learning_since is None and step >= self.learning_starts:
            self.learning_since = (time.perf_counter(), step)

    def warmup_steps_per_second(self, step: int) -> float:
        start, first = self.started
        end, last = self.learning_since or (time.perf_counter(), step)
        return (last - first) / (end - start) if last > first and end > start else float("nan")

    def learning_steps_per_second(self, step: int) -> float | None:
        if self.learning_since is None or step <= self.learning_since[1]:
            return None
        since, first = self.learning_since
        return (step - first) / max(time.perf_counter() - since, 1e-9)


def seconds_per_update(agent: TD3Agent, batch: ReplayBatch) -> float:
    """The mean time of ``policy_delay`` updates (one actor step among them) on a copy of ``agent``, after as many
    untimed ones (allocations, kernel choice), with the RNGs forked: the run's agent and generators are left as they
    were.  A start-up cost of a few updates."""
    graphed, agent.graphed = agent.graphed, None  # a CUDA graph does not copy; the copy runs eager
    try:
        probe = copy.deepcopy(agent)
    finally:
        agent.graphed = graphed
    cuda = agent.device.type == "cuda"
    with torch.random.fork_rng(devices=[agent.device] if cuda else []):
        cycle = agent.hyperparameters.policy_delay
        for _ in range(cycle):
            probe.update(batch, 0)
        if cuda:
            torch.cuda.synchronize(agent.device)
        started = time.perf_counter()
        for _ in range(cycle):
            probe.update(batch, 0)
        if cuda:
            torch.cuda.synchronize(agent.device)
        return (time.perf_counter() - started) / cycle


def blank_batch(observation_space: gym.Space, action_space: gym.Space, batch_size: int,
                device: torch.device) -> ReplayBatch:
    """A batch of zeros shaped as the replay samples them: enough to time an update."""
    assert observation_space.shape is not None and action_space.shape is not None
    dtype = torch.from_numpy(np.zeros(0, observation_space.dtype)).dtype
    obs = torch.zeros((batch_size, *observation_space.shape), dtype=dtype, device=device)
    column = torch.zeros((batch_size, 1), device=device)
    actions = torch.zeros((batch_size, *action_space.shape), device=device)
    return ReplayBatch(obs, actions, column, obs.clone(), column)


class RunProgress:
    """tqdm's bar with this module's estimate of the time left instead of tqdm's, the update rate, the last return
    and the alert counts.  ``time_update`` prices the learning phase before it starts (called once, only when the bar
    is shown and learning has not started)."""

    def __init__(self, total_steps: int, step: int, learning_starts: int, updates_per_step: Fraction,
                 num_updates: int, show: bool, time_update: Callable[[], float]) -> None:
        self.bar = tqdm(total=total_steps, initial=step, unit="step", mininterval=1.0, disable=not show,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]")
        self.total_steps, self.learning_starts, self.updates_per_step = total_steps, learning_starts, updates_per_step
        self.clock = PhaseClock(step, learning_starts)
        self.update_seconds = time_update() if show and step < learning_starts else float("nan")
        self._rate_since = (time.perf_counter(), num_updates)

    def advance(self, step: int, steps: int) -> None:
        self.clock.observe(step)
        self.bar.update(steps)

    def eta(self, step: int) -> str:
        return format_duration(remaining_seconds(
            step, self.total_steps, self.learning_starts, self.updates_per_step,
            self.clock.warmup_steps_per_second(step), self.update_seconds, self.clock.learning_steps_per_second(step)))

    def show(self, step: int, num_updates: int, last_return: float, latest: dict[str, float]) -> None:
        started, updates = self._rate_since
        elapsed = time.perf_counter() - started
        self.bar.set_postfix(eta=self.eta(step), upd_s=f"{(num_updates - updates) / max(elapsed, 1e-9):.2f}",
                             ret=f"{last_return:.1f}", warn=int(latest.get("alerts/warning", 0)),
                             crit=int(latest.get("alerts/critical", 0)), refresh=False)
        self._rate_since = (time.perf_counter(), num_updates)

    def close(self) -> None:
        self.bar.close()
