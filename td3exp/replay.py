"""Replay buffer that stores one uint8 frame per step and rebuilds frame stacks by index.

A 4x84x84 stack stored twice per transition (obs and next obs) costs 56 KB; one 84x84 frame costs 7 KB, so a 1M
buffer needs 6.6 GiB instead of 52.6 GiB (``../shared/bench/replay_mem.py``).  Stacks are clamped at the episode's
first frame, which reproduces gymnasium's ``FrameStackObservation(padding_type="reset")``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class ReplayBatch(NamedTuple):
    obs: torch.Tensor  # uint8 (B, C, H, W)
    actions: torch.Tensor  # float (B, A) in [-1, 1]
    rewards: torch.Tensor  # float (B, 1)
    next_obs: torch.Tensor  # uint8 (B, C, H, W)
    terminated: torch.Tensor  # float (B, 1): 1 only at true terminations, never at time limits


class FrameReplay:
    """Ring buffer of frames and transitions, indexed by monotonic frame ids."""

    def __init__(
        self, capacity: int, frame_shape: tuple[int, ...], frame_stack: int, action_dim: int,
        batch_size: int, device: torch.device, seed: int = 0,
    ) -> None:
        self.capacity, self.frame_stack, self.batch_size, self.device = capacity, frame_stack, batch_size, device
        self.frames = np.zeros((capacity, *frame_shape), dtype=np.uint8)  # lazily backed by the OS
        self.next_frame_id = np.zeros(capacity, dtype=np.int64)
        self.episode_start_id = np.zeros(capacity, dtype=np.int64)
        self.actions = np.zeros((capacity, action_dim), dtype=np.float32)
        self.rewards = np.zeros((capacity, 1), dtype=np.float32)
        self.terminated = np.zeros((capacity, 1), dtype=np.float32)
        self.frames_written = 0
        self.transitions_written = 0
        self.first_live = 0  # oldest transition whose frames are all still in the ring
        self._episode_start = -1
        self._offsets = np.arange(-frame_stack, 1)
        self.rng = np.random.default_rng(seed)
        # sampling writes into reused buffers (no large allocation per batch); on CUDA two pinned buffers
        # alternate so the host fills one while the other may still be copying
        self._cuda = device.type == "cuda"
        shape = (batch_size, frame_stack + 1, *frame_shape)
        self._stacks = [torch.empty(shape, dtype=torch.uint8, pin_memory=self._cuda) for _ in range(2)]
        self._copied: list[torch.cuda.Event | None] = [None, None]
        self._turn = 0

    def __len__(self) -> int:
        return self.transitions_written - self.first_live

    _ARRAYS = ("frames", "next_frame_id", "episode_start_id", "actions", "rewards", "terminated")

    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(small state, the filled part of each array): the arrays are views, for streaming to disk without a copy."""
        filled = {"frames": min(self.frames_written, self.capacity)}
        rows = min(self.transitions_written, self.capacity)
        arrays = {name: getattr(self, name)[: filled.get(name, rows)] for name in self._ARRAYS}
        state = {"frames_written": self.frames_written, "transitions_written": self.transitions_written,
                 "first_live": self.first_live, "episode_start": self._episode_start,
                 "rng": self.rng.bit_generator.state}
        return state, arrays

    def load_state_dict(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        for name in self._ARRAYS:
            source = arrays[name]
            if source.shape[1:] != getattr(self, name).shape[1:] or len(source) > self.capacity:
                raise ValueError(f"replay array {name} of shape {source.shape} does not fit this buffer")
            getattr(self, name)[: len(source)] = source  # copied page by page from a memory-mapped file
        self.frames_written, self.transitions_written = state["frames_written"], state["transitions_written"]
        self.first_live, self._episode_start = state["first_live"], state["episode_start"]
        self.rng.bit_generator.state = state["rng"]

    def _write_frame(self, frame: np.ndarray) -> int:
        frame_id = self.frames_written
        self.frames[frame_id % self.capacity] = frame
        self.frames_written += 1
        return frame_id

    def newest_frame(self) -> np.ndarray:
        return self.frames[(self.frames_written - 1) % self.capacity]

    def start_episode(self, first_frame: np.ndarray) -> None:
        """Store the newest frame of the reset observation."""
        self._episode_start = self._write_frame(first_frame)

    def add(self, next_frame: np.ndarray, action: np.ndarray, reward: float, terminated: bool) -> None:
        """Store a transition by the newest frame of its next observation."""
        if self._episode_start < 0:
            raise RuntimeError("FrameReplay.add() before start_episode(): call start_episode with the reset frame")
        frame_id = self._write_frame(next_frame)
        i = self.transitions_written % self.capacity
        self.next_frame_id[i], self.episode_start_id[i] = frame_id, self._episode_start
        self.actions[i], self.rewards[i, 0], self.terminated[i, 0] = action, reward, float(terminated)
        self.transitions_written += 1
        self._advance_first_live()

    def _oldest_frame(self, j: int) -> int:
        i = j % self.capacity
        return max(int(self.episode_start_id[i]), int(self.next_frame_id[i]) - self.frame_stack)

    def _advance_first_live(self) -> None:
        oldest_kept_frame = self.frames_written - self.capacity
        self.first_live = max(self.first_live, self.transitions_written - self.capacity)
        while self.first_live < self.transitions_written and self._oldest_frame(self.first_live) < oldest_kept_frame:
            self.first_live += 1

    def sample(self) -> ReplayBatch:
        """Uniform batch of live transitions, moved to the device (uint8 pixels; the networks scale them)."""
        if len(self) == 0:
            raise RuntimeError("FrameReplay.sample() on an empty buffer")
        j = self.rng.integers(self.first_live, self.transitions_written, self.batch_size)
        i = j % self.capacity
        ids = np.maximum(self.next_frame_id[i, None] + self._offsets, self.episode_start_id[i, None])
        stacks = self._gather(ids % self.capacity)

        def to_device(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(x[i]).to(self.device, non_blocking=True)

        return ReplayBatch(
            obs=stacks[:, :-1],
            actions=to_device(self.actions),
            rewards=to_device(self.rewards),
            next_obs=stacks[:, 1:],
            terminated=to_device(self.terminated),
        )

    def _gather(self, slots: np.ndarray) -> torch.Tensor:
        """Frames at ``slots`` (B, stack + 1) as one device tensor. On CPU the result is a reused buffer:
        consume a batch before sampling the next."""
        k, self._turn = self._turn, (self._turn + 1) % 2 if self._cuda else 0
        if self._copied[k] is not None:
            self._copied[k].synchronize()  # type: ignore[union-attr]
        np.take(self.frames, slots, axis=0, out=self._stacks[k].numpy())
        if not self._cuda:
            return self._stacks[k]
        stacks = self._stacks[k].to(self.device, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._copied[k] = event
        return stacks
