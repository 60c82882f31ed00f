"""Parallel CARLA envs (``env.vector=async``) with the real gymnasium AsyncVectorEnv and real worker processes; the
CARLA client in a worker is the TEST DOUBLE in tests/carla_double/ (no CARLA server can run here), or the real
client against a closed port."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from omegaconf import OmegaConf

from td3exp import build
from td3exp.config import Config
from td3exp.envs.carla.errors import SimulatorUnavailable
from td3exp.envs.carla.factory import make_carla
from td3exp.envs.vector import ParallelEnvs

from . import carla_double as double
from .conftest import compose_config
from .test_carla_env import WEIGHTS, carla_config
from .test_carla_server import free_port

SPACES = (gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Box(-1.0, 1.0, (2,), np.float32))


def carla_on_a_double(port: int, record: Path) -> gym.Env:
    """make_carla against a double server in the process that calls it, writing down which process that is."""
    with record.open("a") as out:
        out.write(f"{os.getpid()}\n")
    if ("127.0.0.1", port) not in double.SERVERS:
        double.FakeServer(double.straight_map(2000.0), port=port)
    return make_carla(carla_config(port), WEIGHTS, 40.0, "none", 10.0, 0.99, seed=0, make_client=double.Client)


def test_async_envs_build_no_carla_env_in_the_main_process(tmp_path: Path) -> None:
    # gymnasium's AsyncVectorEnv calls its first env fn in the main process to read the spaces: with CARLA that
    # connected, loaded the town (and started a server) before the worker did it all again
    record = tmp_path / "built_in"
    make = partial(carla_on_a_double, 4900, record)
    envs = ParallelEnvs.make([make], [make], "async", SPACES)
    try:
        obs, _ = envs.reset([0], np.array([True]))
        assert obs.shape == (1, 4, 84, 84)
    finally:
        envs.close()
    built_in = record.read_text().split()
    assert len(built_in) == 2 and str(os.getpid()) not in built_in  # the worker's training and evaluation env


def test_when_no_env_process_reaches_a_simulator_the_run_cannot_start() -> None:
    # what app turns into exit code 2 and one line (test_carla_server runs the real command)
    port = free_port()  # nothing listens there
    cfg: Config = OmegaConf.to_object(compose_config([  # type: ignore[assignment]
        "env=carla", f"env.port={port}", "env.timeout=1", "env.vector=async"]))
    with pytest.raises(SimulatorUnavailable, match=f"no CARLA server answered at 127.0.0.1:{port}"):
        build.build_envs(cfg)
