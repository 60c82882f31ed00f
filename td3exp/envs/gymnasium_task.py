"""Any registered gymnasium task with a flat Box observation and a Box action (MuJoCo, Box2D, classic control), as
td3exp trains on it: actions in [-1, 1] rescaled to the task's bounds, float32 observations, the task's own reward.

No reward components here: the training reward is the task's reward (``info["native_reward"]``, and
``info["weighted_reward"]`` before any normalization), so episode returns and evaluations read the same scale.
"""

from __future__ import annotations

import warnings
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import DtypeObservation, RescaleAction

from td3exp.config import ConfigError
from td3exp.envs.wrappers import ActionRepeat, normalize_reward


class NativeReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Reports the task's reward as ``info["native_reward"]`` and ``info["weighted_reward"]`` (there are no
    components to weight), the keys the trainer's episode statistics read."""

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, {**info, "native_reward": float(reward),
                                                    "weighted_reward": float(reward)}


def route_mujoco_warnings() -> None:
    """MuJoCo appends its warnings (e.g. HalfCheetah's deprecated ``settotalmass``) to MUJOCO_LOG.TXT in the working
    directory, outside the run directory: they go to Python's warnings instead (shown once each)."""
    try:
        import mujoco
    except ImportError:  # gymnasium[mujoco] not installed: only non-MuJoCo tasks run
        return
    mujoco.set_mju_user_warning(lambda message: warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=1))


def check_spaces(env_id: str, observation_space: gym.Space, action_space: gym.Space) -> None:
    """ConfigError (exit 2) unless the task observes a flat vector and acts in a bounded Box."""
    if not (isinstance(observation_space, gym.spaces.Box) and len(observation_space.shape) == 1):
        raise ConfigError(f"env.id={env_id} observes {observation_space}: env=gymnasium needs a flat Box observation "
                         "(pixel tasks: env=car_racing or env=carla)")
    if not (isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1
            and np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
        raise ConfigError(f"env.id={env_id} acts in {action_space}: TD3 needs a bounded continuous Box action")


def make_gymnasium_task(
    env_id: str, max_episode_steps: int | None, action_repeat: int, normalize: str, clip_range: float, gamma: float,
) -> gym.Env:
    """``env_id`` built with its time limit (``max_episode_steps`` agent steps; None: the task's own), actions in
    [-1, 1], float32 observations, the task's reward, then ``normalize`` ("none" | "clip" | "running", see
    ``normalize_reward``)."""
    route_mujoco_warnings()
    try:
        limit = None if max_episode_steps is None else max_episode_steps * action_repeat
        env = gym.make(env_id, max_episode_steps=limit)
    except gym.error.Error as error:  # unknown id, missing extra (e.g. mujoco)
        raise ConfigError(f"env.id={env_id}: {str(error).splitlines()[0]}") from error
    check_spaces(env_id, env.observation_space, env.action_space)
    # the agent acts in [-1, 1]; the task sees its own bounds
    env = RescaleAction(env, np.float32(-1.0), np.float32(1.0))
    with warnings.catch_warnings():  # float64 bounds of +-inf lose no precision as float32
        warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
        env = DtypeObservation(env, np.float32)
    env = ActionRepeat(NativeReward(env), action_repeat)
    return normalize_reward(env, normalize, clip_range, gamma)
