"""td3exp's agent and replay built as training builds them: Hydra composition of ``conf/`` and the factories."""

from __future__ import annotations

import itertools
from typing import cast

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from benchmarks.timing import Step
from td3exp import build, cli
from td3exp.agent import TD3Agent
from td3exp.config import Config, ConfigError, register_configs
from td3exp.replay import FrameReplay
from td3exp.validation import validate

ACTION_DIM = 2  # CarRacing's [steer, throttle_brake]


def compose_config(overrides: list[str]) -> Config:
    """The validated config training would get from these overrides (Hydra errors and ConfigError propagate)."""
    register_configs()
    with initialize_config_dir(str(cli.CONF_DIR), version_base="1.3"):
        cfg = cast(Config, OmegaConf.to_object(compose("config", overrides)))
    validate(cfg)
    return cfg


def compose_or_exit(overrides: list[str]) -> Config:
    """As ``compose_config``; a bad override is a user mistake: the entrypoint's one line and exit code 2."""
    cli.register()
    cli.preflight(overrides)
    return compose_config(overrides)


def compose_optional(overrides: list[str], option: str) -> Config | str:
    """The config with ``option`` (``key=value``) added, or why it is not available: a key another change is still
    adding makes Hydra refuse the override."""
    try:
        return compose_config([*overrides, option])
    except ConfigCompositionException:
        return f"{option.split('=')[0]} not available"
    except ConfigError as error:  # available, but not here (e.g. a device it needs)
        return str(error)


def obs_shape(cfg: Config) -> tuple[int, int, int]:
    return cfg.env.frame_stack, cfg.env.image_size, cfg.env.image_size


def build_agent(cfg: Config, device: torch.device, measure: bool = True) -> TD3Agent:
    """``measure=False``: the same agent without td3exp's measuring (to price it)."""
    return build.build_agent(cfg, obs_shape(cfg), ACTION_DIM, device, measure=measure)


def build_replay(cfg: Config, device: torch.device) -> FrameReplay:
    return build.build_replay(cfg, obs_shape(cfg), ACTION_DIM, device)


def fill_replay(replay: FrameReplay, cfg: Config, transitions: int, seed: int = 0) -> None:
    """Episodes as CarRacing writes them: a reset frame, then one new frame per step up to the time limit; random
    pixels, actions and rewards."""
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 256, (64, cfg.env.image_size, cfg.env.image_size), dtype=np.uint8)
    for t in range(transitions):
        if t % cfg.env.max_episode_steps == 0:
            replay.start_episode(pool[rng.integers(len(pool))])
        action = rng.uniform(-1.0, 1.0, ACTION_DIM).astype(np.float32)
        replay.add(pool[t % len(pool)], action, float(rng.normal()), terminated=False)


def update_step(agent: TD3Agent, replay: FrameReplay) -> Step:
    """One learning step as the trainer runs it: sample a batch, update on it."""
    counter = itertools.count()

    def step() -> None:
        agent.update(replay.sample(), next(counter))

    return step
