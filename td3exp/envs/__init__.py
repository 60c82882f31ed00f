"""Env construction: simulator -> 2-D action -> reward components -> action repeat -> pixels -> training reward."""

from __future__ import annotations

import os

import gymnasium as gym
from gymnasium.wrappers import FrameStackObservation, GrayscaleObservation, ResizeObservation

from td3exp.envs.car_racing import CarRacingComponents
from td3exp.envs.gymnasium_task import make_gymnasium_task
from td3exp.envs.wrappers import ActionRepeat, SteerThrottleAction, WeightedReward, normalize_reward
from td3exp.rewards import RewardWeights


def wrap_pixels_and_reward(
    env: gym.Env, frame_stack: int, image_size: int, action_repeat: int, weights: RewardWeights, normalize: str,
    clip_range: float, gamma: float,
) -> gym.Env:
    """The chain every simulator goes through, so replay, networks, metrics and reports see the same observations
    and ``info``: action repeat, grayscale, resize, frame stack, weighted reward, then normalization.

    ``env`` already reports ``info["reward_components"]`` and ``info["native_reward"]`` and has its time limit.
    ``normalize``: see ``normalize_reward``.
    """
    env = ActionRepeat(env, action_repeat)
    env = GrayscaleObservation(env, keep_dim=False)
    env = ResizeObservation(env, (image_size, image_size))
    env = FrameStackObservation(env, frame_stack, padding_type="reset")
    return normalize_reward(WeightedReward(env, weights), normalize, clip_range, gamma)


def make_car_racing(
    frame_stack: int, image_size: int, action_repeat: int, max_episode_steps: int,
    target_speed: float, weights: RewardWeights, normalize: str, clip_range: float, gamma: float,
) -> gym.Env:
    """CarRacing-v3 as uint8 (frame_stack, image_size, image_size) observations and a 2-D action.

    ``max_episode_steps`` counts agent steps; see ``wrap_pixels_and_reward`` for the rest.
    """
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless
    env = gym.make("CarRacing-v3", max_episode_steps=max_episode_steps * action_repeat)
    env = CarRacingComponents(SteerThrottleAction(env), target_speed)
    return wrap_pixels_and_reward(env, frame_stack, image_size, action_repeat, weights, normalize, clip_range, gamma)


__all__ = ["make_car_racing", "make_gymnasium_task", "wrap_pixels_and_reward"]
