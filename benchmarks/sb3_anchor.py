"""Stable-Baselines3's TD3 ``CnnPolicy`` with td3exp's networks (two NatureCNNs, separate encoders), updated as
SB3 trains it, and SB3's replay buffer filled with the same episode layout. SB3 is a benchmark-only dependency
(the ``bench`` extra): this module is imported only by the benchmark scripts."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import TD3
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import Logger

from benchmarks.timing import Step


class FrameStackSpaces(gym.Env):
    """Gives SB3 the spaces of td3exp's CarRacing (uint8 frame stacks, 2-D action); SB3 builds a model from an env,
    the benchmark never steps it."""

    def __init__(self, obs_shape: tuple[int, int, int], action_dim: int) -> None:
        self.obs_shape = obs_shape
        self.observation_space = gym.spaces.Box(0, 255, obs_shape, np.uint8)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(self.obs_shape, np.uint8), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return np.zeros(self.obs_shape, np.uint8), 0.0, False, False, {}


def build_td3(
    obs_shape: tuple[int, int, int], action_dim: int, features_dim: int, hidden_dims: list[int], buffer_size: int,
    batch_size: int, gamma: float, tau: float, policy_delay: int, target_noise: float, noise_clip: float,
    learning_rate: float, device: torch.device,
) -> TD3:
    model = TD3(
        "CnnPolicy", FrameStackSpaces(obs_shape, action_dim), learning_rate=learning_rate, buffer_size=buffer_size,
        learning_starts=0, batch_size=batch_size, tau=tau, gamma=gamma, policy_delay=policy_delay,
        target_policy_noise=target_noise, target_noise_clip=noise_clip, device=device, seed=0,
        policy_kwargs={"net_arch": hidden_dims, "share_features_extractor": False,
                       "features_extractor_kwargs": {"features_dim": features_dim}},
    )
    model.set_logger(Logger(folder=None, output_formats=[]))  # train() records losses; keep them in memory
    return model


def fill_buffer(buffer: ReplayBuffer, transitions: int, episode_steps: int, seed: int = 0) -> None:
    """Episodes as a frame-stacking env gives them to SB3: stacks clamped at the episode's reset frame, the last
    step a time-limit truncation; the same random frame pool and layout as td3exp's fill."""
    rng = np.random.default_rng(seed)
    stack, size = buffer.obs_shape[0], buffer.obs_shape[-1]
    pool = rng.integers(0, 256, (64, size, size), dtype=np.uint8)
    offsets = np.arange(1 - stack, 1)
    frame_ids = np.zeros(episode_steps + 1, np.int64)  # frame id of each episode step, step 0 = the reset frame

    def observation(t: int) -> np.ndarray:
        return pool[frame_ids[np.maximum(t + offsets, 0)] % len(pool)][None]

    for i in range(transitions):
        t = i % episode_steps
        if t == 0:
            frame_ids[0] = rng.integers(len(pool))
        frame_ids[t + 1] = i
        truncated = t == episode_steps - 1
        buffer.add(
            observation(t), observation(t + 1), rng.uniform(-1.0, 1.0, (1, buffer.action_dim)),
            np.array([rng.normal()]), np.array([truncated]), [{"TimeLimit.truncated": truncated}],
        )


def update_step(model: TD3, batch_size: int) -> Step:
    """One gradient step as SB3's learn() runs it with train_freq=1: sample, update, record losses."""

    def step() -> None:
        model.train(gradient_steps=1, batch_size=batch_size)

    return step
