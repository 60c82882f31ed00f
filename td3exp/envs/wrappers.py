"""Env-agnostic wrappers: action repeat with summed reward components, and the weighted training reward."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import ClipReward, NormalizeReward

from td3exp.rewards import COMPONENTS, RewardWeights


class ActionRepeat(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Hold each action for ``repeat`` simulator steps; rewards, native rewards and components (where the env reports
    them) are summed."""

    def __init__(self, env: gym.Env, repeat: int) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, repeat=repeat)
        gym.Wrapper.__init__(self, env)
        self.repeat = repeat

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        total, native = 0.0, 0.0
        components = dict.fromkeys(COMPONENTS, 0.0)
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            native += info["native_reward"]
            for name, value in info.get("reward_components", {}).items():
                components[name] += value
            if terminated or truncated:
                break
        summed: dict[str, Any] = {"native_reward": native}
        if "reward_components" in info:
            summed["reward_components"] = components
        if "weighted_reward" in info:  # the env's own training reward (no components): the summed reward
            summed["weighted_reward"] = total
        return obs, total, terminated, truncated, {**info, **summed}


class WeightedReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Training reward = weighted sum of ``info["reward_components"]`` (kept in ``info["weighted_reward"]``
    before any normalization wrapper changes the reward)."""

    def __init__(self, env: gym.Env, weights: RewardWeights) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, weights=weights)
        gym.Wrapper.__init__(self, env)
        self.weights = weights

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        reward = self.weights.combine(info["reward_components"])
        return obs, reward, terminated, truncated, {**info, "weighted_reward": reward}


class SteerThrottleAction(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """2-D action [steer, throttle_brake] in [-1, 1], as a CARLA vehicle control takes it, mapped to
    CarRacing's [steer, gas, brake]: positive throttle_brake is gas, negative is brake."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.ActionWrapper.__init__(self, env)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        steer, throttle_brake = float(action[0]), float(action[1])
        return np.array([steer, max(throttle_brake, 0.0), max(-throttle_brake, 0.0)], dtype=np.float32)


def normalize_reward(env: gym.Env, normalize: str, clip_range: float, gamma: float) -> gym.Env:
    """``normalize``: "none" | "clip" (to +-clip_range) | "running" (divide by a running std of the discounted
    return, as VecNormalize does, then clip)."""
    if normalize == "running":
        env = NormalizeReward(env, gamma=gamma)
    if normalize in ("running", "clip"):
        env = ClipReward(env, -clip_range, clip_range)
    return env


def _reward_normalizer(env: gym.Env) -> NormalizeReward | None:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, NormalizeReward):
            return env
        env = env.env
    return None


def reward_normalizer_state(env: gym.Env) -> dict[str, Any] | None:
    """The running-return statistics of the env's NormalizeReward wrapper (None without one): a resume restores
    them after replaying the episode in progress, so the replay does not count its rewards twice."""
    normalizer = _reward_normalizer(env)
    if normalizer is None:
        return None
    rms = normalizer.return_rms
    return {"mean": np.copy(rms.mean), "var": np.copy(rms.var), "count": rms.count,
            "discounted_reward": np.copy(normalizer.discounted_reward)}


def load_reward_normalizer_state(env: gym.Env, state: dict[str, Any] | None) -> None:
    normalizer = _reward_normalizer(env)
    if normalizer is None or state is None:
        if (normalizer is None) != (state is None):
            raise ValueError("the checkpoint's reward normalization does not match this env's (reward.normalize)")
        return
    rms = normalizer.return_rms
    rms.mean, rms.var, rms.count = np.copy(state["mean"]), np.copy(state["var"]), state["count"]
    normalizer.discounted_reward = np.copy(state["discounted_reward"])
