"""The embedded env: real CarRacing-v3, headless, with reward components and the 2-D action."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from omegaconf import OmegaConf

from td3exp import build
from td3exp.envs import make_car_racing
from td3exp.envs.wrappers import SteerThrottleAction
from td3exp.rewards import COMPONENTS, RewardWeights, distance_to_polyline

from .conftest import compose_config

WEIGHTS = RewardWeights(progress=0.6, smoothness=0.2, lane_centering=0.1, efficiency=0.1)


def car_racing(normalize: str = "none", action_repeat: int = 1, steps: int = 60):
    return make_car_racing(4, 84, action_repeat, steps, 40.0, WEIGHTS, normalize, 10.0, 0.99)


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
@pytest.mark.parametrize("normalize", ["none", "clip"])
def test_gymnasium_check_env_passes(normalize: str) -> None:
    # "running" normalization is stateful across episodes by design, so its rewards cannot repeat on reset
    check_env(car_racing(normalize), skip_render_check=True)


def test_observation_action_and_reward_components() -> None:
    env = car_racing()
    assert env.observation_space.shape == (4, 84, 84) and env.observation_space.dtype == np.uint8
    assert env.action_space.shape == (2,)
    obs, _ = env.reset(seed=0)
    totals = dict.fromkeys(COMPONENTS, 0.0)
    for t in range(40):
        action = np.array([0.3 * np.sin(t), 0.6], np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        components = info["reward_components"]
        assert set(components) == set(COMPONENTS)
        assert reward == pytest.approx(WEIGHTS.combine(components)) == info["weighted_reward"]
        assert components["smoothness"] <= 0 and components["lane_centering"] <= 0
        assert -1 <= components["efficiency"] <= 0
        for k in COMPONENTS:
            totals[k] += components[k]
    assert totals["progress"] > 0  # the car drove over new tiles
    assert totals["smoothness"] < 0  # the steering changed
    assert obs.shape == (4, 84, 84)


def test_steer_throttle_maps_to_gas_and_brake() -> None:
    wrapper = SteerThrottleAction.__new__(SteerThrottleAction)
    np.testing.assert_allclose(wrapper.action(np.array([-0.5, 0.8])), [-0.5, 0.8, 0.0])
    np.testing.assert_allclose(wrapper.action(np.array([0.2, -0.4])), [0.2, 0.0, 0.4])


def test_time_limit_truncates_in_agent_steps_with_action_repeat() -> None:
    env = car_racing(action_repeat=2, steps=10)
    env.reset(seed=0)
    for _t in range(10):
        _, _, terminated, truncated, info = env.step(np.array([0.0, 0.2], np.float32))
    assert truncated and not terminated


def test_clip_normalization_bounds_the_training_reward() -> None:
    env = make_car_racing(4, 84, 1, 30, 40.0, RewardWeights(100.0, 0, 0, 0), "clip", 10.0, 0.99)
    env.reset(seed=0)
    rewards = [env.step(np.array([0.0, 1.0], np.float32))[1] for _ in range(30)]
    assert max(rewards) == 10.0  # a 100x progress reward of ~300 per tile is clipped


def test_eval_env_is_not_normalized() -> None:
    """Evaluation reports unnormalized returns: its env gives the weighted reward as it is, where the training env
    under reward.normalize=running scales it by the running return statistics."""
    cfg = OmegaConf.to_object(compose_config(["reward.normalize=running", "env.max_episode_steps=30"]))
    train_env, eval_env = build.build_env(cfg), build.build_env(cfg, evaluation=True)  # type: ignore[arg-type]
    train_env.reset(seed=0)
    eval_env.reset(seed=0)
    scaled = []
    for _ in range(20):
        action = np.array([0.0, 1.0], np.float32)
        _, train_reward, *_, train_info = train_env.step(action)
        _, eval_reward, *_, eval_info = eval_env.step(action)
        assert eval_info["weighted_reward"] == train_info["weighted_reward"]  # same track, same actions
        assert eval_reward == eval_info["weighted_reward"]
        scaled.append(abs(float(train_reward) - train_info["weighted_reward"]) > 1e-6)
    assert any(scaled)


def test_lateral_offset_from_centerline() -> None:
    square = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    assert distance_to_polyline(np.array([5.0, 1.0]), square) == pytest.approx(1.0)
    assert distance_to_polyline(np.array([5.0, -2.0]), square) == pytest.approx(2.0)
    assert distance_to_polyline(np.array([0.0, 5.0]), square) == pytest.approx(0.0)
