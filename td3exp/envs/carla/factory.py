"""``env=carla``: the CARLA config turned into the lane-keeping env, wrapped exactly like the embedded env
(action repeat, grayscale, resize, frame stack, weighted reward, normalization), so replay, networks, metrics
and reports see the same observations and ``info``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import carla
import gymnasium as gym
from gymnasium.wrappers import TimeLimit

from td3exp.config import CarlaEnvConfig, ConfigError
from td3exp.envs import wrap_pixels_and_reward
from td3exp.envs.carla.actors import EgoSpec
from td3exp.envs.carla.env import CarlaLaneKeeping
from td3exp.envs.carla.server import ServerProcess
from td3exp.envs.carla.session import CarlaSession, open_session
from td3exp.rewards import RewardWeights


def make_carla(
    env: CarlaEnvConfig, weights: RewardWeights, target_speed: float, normalize: str, clip_range: float,
    gamma: float, seed: int, env_index: int = 0, make_client: Callable[[str, int], Any] = carla.Client,
) -> gym.Env:
    """The CARLA env number ``env_index``: it uses its own server at ``env.port + slot * env.port_step`` (and
    Traffic Manager port ``env.tm_port + slot``), where ``slot = env.job_slot * env.num_envs + env_index``, so that
    parallel sweep jobs (``env.job_slot=${hydra:job.num}``) do not share servers; envs built with the same index
    share one connection.

    ``target_speed`` is in km/h.  ``make_client(host, port)`` is ``carla.Client``; tests pass a test double.
    Raises SimulatorUnavailable (one line) when no server answers within ``env.timeout`` seconds.
    """
    slot = env.job_slot * env.num_envs + env_index
    port = env.port + slot * env.port_step

    def connect() -> CarlaSession:
        server = None
        if env.server.command is not None:
            server = ServerProcess(env.server.command, env.host, port, env.server.startup_timeout)
        return CarlaSession(
            env.host, port, env.timeout, env.town, env.fixed_delta_seconds, env.tm_port + slot,
            env.npc_vehicles, env.vehicle, env.weather, env.max_reconnects, env.reconnect_backoff, server,
            make_client, seed + env_index, env.allow_version_mismatch,
        )

    session = open_session(connect, env.host, port)
    if env.spawn_point is not None and env.spawn_point >= len(session.spawn_points):
        session.release()
        raise ConfigError(f"env.spawn_point={env.spawn_point} but {env.town} has {len(session.spawn_points)} spawn "
                          "points; pick a smaller index or null for a seeded-random one")
    c = env.camera
    ego = EgoSpec(env.vehicle, c.width, c.height, c.fov,
                  carla.Transform(carla.Location(x=c.x, z=c.z), carla.Rotation(pitch=c.pitch)), env.spawn_retries)
    lane_keeping = CarlaLaneKeeping(session, ego, target_speed, env.max_lateral_offset, env.max_idle_steps,
                                    env.terminal_penalty, env.settle_ticks, env.spawn_point)
    assert env.max_episode_steps is not None  # validate() requires it for the pixel envs
    wrapped = TimeLimit(lane_keeping, env.max_episode_steps * env.action_repeat)
    return wrap_pixels_and_reward(wrapped, env.frame_stack, env.image_size, env.action_repeat, weights, normalize,
                                  clip_range, gamma)
