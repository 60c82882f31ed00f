"""Parallel CARLA envs (``env.vector=async``) with the real gymnasium AsyncVectorEnv, real worker processes and the
real ``carla`` client against a closed port (no CARLA server can run here)."""

from __future__ import annotations

import numpy as np
from omegaconf import OmegaConf

from td3exp import build
from td3exp.config import Config
from td3exp.envs.carla.session import _SESSIONS
from td3exp.envs.vector import UNAVAILABLE

from .conftest import compose_config
from .test_carla_server import free_port


def test_async_envs_build_no_carla_env_in_the_main_process() -> None:
    # gymnasium's AsyncVectorEnv calls its first env fn in the main process to read the spaces: with CARLA that
    # connected, loaded the town (and started a server) before the worker did it all again
    port = free_port()  # nothing listens there: a connection fails within env.timeout
    cfg: Config = OmegaConf.to_object(compose_config([  # type: ignore[assignment]
        "env=carla", f"env.port={port}", "env.timeout=1", "env.vector=async", "env.num_envs=1"]))
    envs = build.build_envs(cfg)  # before the fix: SimulatorUnavailable here, from the main process's connect
    try:
        assert not _SESSIONS  # no connection in this process
        assert envs.single_observation_space.shape == (4, 84, 84) and envs.single_action_space.shape == (2,)
        _, infos = envs.reset([0], np.array([True]))
        assert infos[0][UNAVAILABLE].startswith(f"no CARLA server answered at 127.0.0.1:{port}")  # the worker's
    finally:
        envs.close()
