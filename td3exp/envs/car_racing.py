"""Reward components for gymnasium's CarRacing-v3, read from its Box2D state every simulator step."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.envs.box2d.car_racing import PLAYFIELD, TRACK_WIDTH

from td3exp import rewards


class CarRacingComponents(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Adds ``info["reward_components"]`` and ``info["native_reward"]``; the reward stays CarRacing's own.

    progress: 1000/N per newly visited tile (CarRacing's tile reward without its -0.1 time penalty), and -100 when
    the car leaves the playfield. Expects the 2-D action of ``SteerThrottleAction``.
    """

    def __init__(self, env: gym.Env, target_speed: float) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, target_speed=target_speed)
        gym.Wrapper.__init__(self, env)
        self.target_speed = target_speed
        self._centerline = np.zeros((0, 2))
        self._previous_action = np.zeros(2, dtype=np.float32)
        self._tiles_seen = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        track = self.env.unwrapped.track  # type: ignore[attr-defined]
        self._centerline = np.array([[x, y] for _, _, x, y in track])
        self._previous_action = np.zeros(2, dtype=np.float32)
        self._tiles_seen = 0
        return obs, info

    def step(self, action: np.ndarray) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        car_racing = self.env.unwrapped
        hull = car_racing.car.hull  # type: ignore[attr-defined]
        position = np.array(hull.position)
        tiles = car_racing.tile_visited_count  # type: ignore[attr-defined]
        progress = (tiles - self._tiles_seen) * 1000.0 / len(self._centerline)
        if np.any(np.abs(position) > PLAYFIELD):
            progress -= 100.0
        components = {
            "progress": progress,
            "smoothness": rewards.smoothness(action, self._previous_action),
            "lane_centering": rewards.lane_centering(
                rewards.distance_to_polyline(position, self._centerline), TRACK_WIDTH
            ),
            "efficiency": rewards.efficiency(float(np.linalg.norm(hull.linearVelocity)), self.target_speed),
        }
        self._tiles_seen = tiles
        self._previous_action = np.asarray(action, dtype=np.float32)
        info = {**info, "reward_components": components, "native_reward": float(reward)}
        return obs, reward, terminated, truncated, info
