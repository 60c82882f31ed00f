"""Frame-deduplicated replay: rebuilt stacks equal the env's own stacked observations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from td3exp.replay import FrameReplay

STACK, SHAPE = 4, (6, 6)


def episode_frames(rng: np.random.Generator, length: int) -> list[np.ndarray]:
    return [rng.integers(0, 256, SHAPE, dtype=np.uint8) for _ in range(length + 1)]


def stacked(frames: list[np.ndarray], t: int) -> np.ndarray:
    """What FrameStackObservation(padding_type="reset") shows at time t."""
    return np.stack([frames[max(t - k, 0)] for k in range(STACK - 1, -1, -1)])


def fill(replay: FrameReplay, episodes: list[list[np.ndarray]]) -> list[tuple]:
    """Add episodes; return every transition as (obs, action, reward, next_obs, terminated)."""
    transitions = []
    for frames in episodes:
        replay.start_episode(frames[0])
        for t in range(1, len(frames)):
            action = np.array([t / 100, -t / 100], np.float32)
            terminated = t == len(frames) - 1 and len(frames) % 2 == 0
            replay.add(frames[t], action, float(t), terminated)
            transitions.append((stacked(frames, t - 1), action, float(t), stacked(frames, t), terminated))
    return transitions


def check_batch(replay: FrameReplay, live: list[tuple]) -> None:
    by_reward_and_obs = {(r, o.tobytes()): (a, n, d) for o, a, r, n, d in live}
    batch = replay.sample()
    for i in range(replay.batch_size):
        obs = batch.obs[i].numpy()
        key = (float(batch.rewards[i, 0]), obs.tobytes())
        assert key in by_reward_and_obs, "sampled an observation stack that the env never showed"
        action, next_obs, terminated = by_reward_and_obs[key]
        np.testing.assert_array_equal(batch.next_obs[i].numpy(), next_obs)
        np.testing.assert_array_equal(batch.actions[i].numpy(), action)
        assert float(batch.terminated[i, 0]) == float(terminated)


def test_stacks_match_frame_stack_observations_across_episodes() -> None:
    rng = np.random.default_rng(0)
    replay = FrameReplay(1000, SHAPE, STACK, 2, batch_size=64, device=torch.device("cpu"), seed=0)
    episodes = [episode_frames(rng, n) for n in (2, 7, 1, 12)]  # episodes shorter than the stack too
    live = fill(replay, episodes)
    assert len(replay) == len(live) == 22
    for _ in range(20):
        check_batch(replay, live)


def test_ring_wraparound_drops_only_overwritten_transitions() -> None:
    rng = np.random.default_rng(1)
    capacity = 50
    replay = FrameReplay(capacity, SHAPE, STACK, 2, batch_size=128, device=torch.device("cpu"), seed=1)
    episodes = [episode_frames(rng, n) for n in (9, 13, 20, 6, 17, 11)]
    live = fill(replay, episodes)  # 76 transitions, 82 frames: the ring wrapped
    assert replay.transitions_written == 76 and replay.frames_written == 82
    # every live transition's frames are still in the ring; at most capacity transitions are live
    assert 0 < len(replay) <= capacity
    oldest_frame_kept = replay.frames_written - capacity
    assert replay._oldest_frame(replay.first_live) >= oldest_frame_kept
    assert replay._oldest_frame(replay.first_live - 1) < oldest_frame_kept
    for _ in range(20):
        check_batch(replay, live[replay.first_live:])


def test_misuse_is_reported() -> None:
    replay = FrameReplay(10, SHAPE, STACK, 2, batch_size=4, device=torch.device("cpu"))
    with pytest.raises(RuntimeError, match="start_episode"):
        replay.add(np.zeros(SHAPE, np.uint8), np.zeros(2, np.float32), 0.0, False)
    with pytest.raises(RuntimeError, match="empty"):
        replay.sample()
