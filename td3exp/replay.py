"""Replay buffer that stores one uint8 frame per step and rebuilds frame stacks by index.

A 4x84x84 stack stored twice per transition (obs and next obs) costs 56 KB; one 84x84 frame costs 7 KB, so a 1M
buffer needs 6.6 GiB instead of 52.6 GiB (``../shared/bench/replay_mem.py``).  Stacks are clamped at the episode's
first frame, which reproduces gymnasium's ``FrameStackObservation(padding_type="reset")``.  Parallel envs each
write their own stream of frames, so a stack never mixes two envs either.  A state-vector observation is one float32
"frame" with no stack (``stacked=False``): each is stored once, not as obs and next obs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class ReplayBatch(NamedTuple):
    obs: torch.Tensor  # uint8 (B, C, H, W) frame stacks, or float32 (B, D) state vectors
    actions: torch.Tensor  # float (B, A) in [-1, 1]
    rewards: torch.Tensor  # float (B, 1)
    next_obs: torch.Tensor  # as obs
    terminated: torch.Tensor  # float (B, 1): 1 only at true terminations, never at time limits


class FrameReplay:
    """Ring buffers of frames and transitions, one pair per frame stream, indexed by monotonic frame ids.

    Each parallel env writes its own stream (``stream=i``), so a stack never mixes frames of two envs; the capacity
    is split evenly between the streams (stream i owns rows i * capacity .. (i + 1) * capacity - 1 of every array),
    and sampling is uniform over the live transitions of all of them.

    ``stacked=False``: observations are single frames (state vectors, ``frame_stack`` 1) and batches hold them
    without a stack axis; ``frame_dtype``: how frames are stored (uint8 pixels, float32 state vectors).
    """

    def __init__(
        self, capacity: int, frame_shape: tuple[int, ...], frame_stack: int, action_dim: int,
        batch_size: int, device: torch.device, seed: int = 0, streams: int = 1, stacked: bool = True,
        frame_dtype: type[np.generic] = np.uint8,
    ) -> None:
        if not stacked and frame_stack != 1:
            raise ValueError(f"unstacked observations have frame_stack 1 (got {frame_stack})")
        self.stacked = stacked
        self.capacity = capacity // streams  # per stream
        if self.capacity <= frame_stack:
            raise ValueError(f"a replay of {capacity} transitions cannot hold {streams} streams of "
                             f"{frame_stack + 1}-frame stacks; raise its capacity")
        self.streams, self.frame_stack, self.batch_size, self.device = streams, frame_stack, batch_size, device
        rows = streams * self.capacity
        self.frames = np.zeros((rows, *frame_shape), dtype=frame_dtype)  # lazily backed by the OS
        self.next_frame_id = np.zeros(rows, dtype=np.int64)
        self.episode_start_id = np.zeros(rows, dtype=np.int64)
        self.actions = np.zeros((rows, action_dim), dtype=np.float32)
        self.rewards = np.zeros((rows, 1), dtype=np.float32)
        self.terminated = np.zeros((rows, 1), dtype=np.float32)
        self.frames_written = np.zeros(streams, dtype=np.int64)
        self.transitions_written = np.zeros(streams, dtype=np.int64)
        self.first_live = np.zeros(streams, dtype=np.int64)  # per stream: oldest transition with all frames kept
        self._episode_start = np.full(streams, -1, dtype=np.int64)
        self._offsets = np.arange(-frame_stack, 1)
        self.rng = np.random.default_rng(seed)
        # sampling writes into reused buffers (no large allocation per batch); on CUDA two pinned buffers
        # alternate so the host fills one while the other may still be copying
        self._cuda = device.type == "cuda"
        shape = (batch_size, frame_stack + 1, *frame_shape)
        dtype = torch.from_numpy(self.frames[:0]).dtype
        self._stacks = [torch.empty(shape, dtype=dtype, pin_memory=self._cuda) for _ in range(2)]
        self._copied: list[torch.cuda.Event | None] = [None, None]
        self._turn = 0

    def __len__(self) -> int:
        return int(np.sum(self.transitions_written - self.first_live))

    _ARRAYS = ("frames", "next_frame_id", "episode_start_id", "actions", "rewards", "terminated")

    def _by_stream(self, name: str) -> np.ndarray:
        """Array ``name`` as (stream, ring slot, ...): a view."""
        array = getattr(self, name)
        return array.reshape(self.streams, self.capacity, *array.shape[1:])

    def state_dict(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(small state, the filled part of each array): the arrays are views, for streaming to disk without a copy."""
        filled = {"frames": int(min(self.frames_written.max(), self.capacity))}
        rows = int(min(self.transitions_written.max(), self.capacity))
        arrays = {name: self._by_stream(name)[:, : filled.get(name, rows)] for name in self._ARRAYS}
        state = {"frames_written": self.frames_written.copy(), "transitions_written": self.transitions_written.copy(),
                 "first_live": self.first_live.copy(), "episode_start": self._episode_start.copy(),
                 "rng": self.rng.bit_generator.state}
        return state, arrays

    def load_state_dict(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        for name in self._ARRAYS:
            source, target = arrays[name], self._by_stream(name)
            if source.shape[0] != target.shape[0] or source.shape[2:] != target.shape[2:] \
                    or source.shape[1] > self.capacity:
                raise ValueError(f"replay array {name} of shape {source.shape} does not fit this buffer")
            target[:, : source.shape[1]] = source  # copied page by page from a memory-mapped file
        self.frames_written[:] = state["frames_written"]
        self.transitions_written[:] = state["transitions_written"]
        self.first_live[:], self._episode_start[:] = state["first_live"], state["episode_start"]
        self.rng.bit_generator.state = state["rng"]

    def _write_frame(self, stream: int, frame: np.ndarray) -> int:
        frame_id = int(self.frames_written[stream])
        self.frames[stream * self.capacity + frame_id % self.capacity] = frame
        self.frames_written[stream] += 1
        return frame_id

    def frame_of(self, obs: np.ndarray) -> np.ndarray:
        """What the buffer stores of an observation: the newest frame of a stack, or the whole state vector."""
        return obs[-1] if self.stacked else obs

    def newest_frame(self, stream: int = 0) -> np.ndarray:
        return self.frames[stream * self.capacity + (self.frames_written[stream] - 1) % self.capacity]

    def start_episode(self, first_frame: np.ndarray, stream: int = 0) -> None:
        """Store the newest frame of the reset observation."""
        self._episode_start[stream] = self._write_frame(stream, first_frame)

    def add(self, next_frame: np.ndarray, action: np.ndarray, reward: float, terminated: bool,
            stream: int = 0) -> None:
        """Store a transition by the newest frame of its next observation."""
        if self._episode_start[stream] < 0:
            raise RuntimeError("FrameReplay.add() before start_episode(): call start_episode with the reset frame")
        frame_id = self._write_frame(stream, next_frame)
        i = stream * self.capacity + self.transitions_written[stream] % self.capacity
        self.next_frame_id[i], self.episode_start_id[i] = frame_id, self._episode_start[stream]
        self.actions[i], self.rewards[i, 0], self.terminated[i, 0] = action, reward, float(terminated)
        self.transitions_written[stream] += 1
        self._advance_first_live(stream)

    def _oldest_frame(self, stream: int, j: int) -> int:
        i = stream * self.capacity + j % self.capacity
        return max(int(self.episode_start_id[i]), int(self.next_frame_id[i]) - self.frame_stack)

    def _advance_first_live(self, stream: int) -> None:
        oldest_kept_frame = self.frames_written[stream] - self.capacity
        written = int(self.transitions_written[stream])
        first = max(int(self.first_live[stream]), written - self.capacity)
        while first < written and self._oldest_frame(stream, first) < oldest_kept_frame:
            first += 1
        self.first_live[stream] = first

    def sample(self) -> ReplayBatch:
        """Uniform batch of live transitions of all streams, moved to the device (uint8 pixels, which the networks
        scale, or float32 state vectors)."""
        live = self.transitions_written - self.first_live
        if live.sum() == 0:
            raise RuntimeError("FrameReplay.sample() on an empty buffer")
        ends = np.cumsum(live)
        k = self.rng.integers(0, ends[-1], self.batch_size)  # uniform over all live transitions
        s = np.searchsorted(ends, k, side="right")
        i = s * self.capacity + (self.first_live[s] + k - (ends[s] - live[s])) % self.capacity
        ids = np.maximum(self.next_frame_id[i, None] + self._offsets, self.episode_start_id[i, None])
        stacks = self._gather(s[:, None] * self.capacity + ids % self.capacity)

        def to_device(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(x[i]).to(self.device, non_blocking=True)

        obs, next_obs = (stacks[:, :-1], stacks[:, 1:]) if self.stacked else (stacks[:, 0], stacks[:, 1])
        return ReplayBatch(
            obs=obs,
            actions=to_device(self.actions),
            rewards=to_device(self.rewards),
            next_obs=next_obs,
            terminated=to_device(self.terminated),
        )

    def _gather(self, slots: np.ndarray) -> torch.Tensor:
        """Frames at flat ``slots`` (stream * capacity + ring slot; B, stack + 1) as one device tensor. On CPU the
        result is a reused buffer: consume a batch before sampling the next."""
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
