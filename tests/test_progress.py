"""The progress bar's estimate of the time left prices the warm-up and the learning phase each at its own speed."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from td3exp.progress import format_duration, remaining_seconds, seconds_per_update

from .test_td3_math import make_agent, make_batch


def test_during_the_warm_up_the_learning_phase_is_priced_at_the_timed_update() -> None:
    # make train on a CPU: 65 steps/s of uniform random actions until step 10000, then ~4 updates/s
    at_1000 = remaining_seconds(1_000, 100_000, 10_000, Fraction(1), 65.0, 0.25, None)
    assert at_1000 == pytest.approx(9_000 / 65 + 90_000 * (1 / 65 + 0.25))
    assert at_1000 > 6 * 3600  # hours, where extrapolating the warm-up speed says 99000 / 65 s = 25 min
    # half an update per step halves the update time of each learning step
    assert remaining_seconds(1_000, 100_000, 10_000, Fraction(1, 2), 65.0, 0.25, None) == pytest.approx(
        9_000 / 65 + 90_000 * (1 / 65 + 0.125))


def test_once_learning_runs_its_measured_speed_replaces_the_guess() -> None:
    assert remaining_seconds(20_000, 100_000, 10_000, Fraction(1), 65.0, 0.25, 3.2) == pytest.approx(80_000 / 3.2)
    # learning started but not measured yet (the first vector step after the warm-up): still the guess
    assert remaining_seconds(10_000, 100_000, 10_000, Fraction(1), 65.0, 0.25, None) == pytest.approx(
        90_000 * (1 / 65 + 0.25))


def test_an_unknown_speed_gives_no_estimate_rather_than_a_wrong_one() -> None:
    assert math.isnan(remaining_seconds(0, 100_000, 10_000, Fraction(1), float("nan"), 0.25, None))
    assert math.isnan(remaining_seconds(0, 100_000, 10_000, Fraction(1), 65.0, float("nan"), None))
    assert format_duration(float("nan")) == "?"
    assert format_duration(24_023.0) == "6h40m" and format_duration(250.0) == "4m10s"


def test_timing_an_update_leaves_the_agent_and_the_generators_as_they_were() -> None:
    agent = make_agent()
    weights = [p.detach().clone() for p in (*agent.actor.parameters(), *agent.critic.parameters())]
    rng = torch.get_rng_state()
    seconds = seconds_per_update(agent, make_batch())
    assert 0 < seconds < 60
    assert agent.num_updates == 0 and not agent.critic_optimizer.state
    assert all(torch.equal(a, b) for a, b in
               zip(weights, (*agent.actor.parameters(), *agent.critic.parameters()), strict=True))
    assert torch.equal(torch.get_rng_state(), rng)
