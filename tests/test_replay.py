"""Frame-deduplicated replay: rebuilt stacks equal the env's own stacked observations, also with several envs
writing interleaved streams into one buffer that wraps around."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from td3exp.replay import FrameReplay

STACK, SHAPE = 4, (6, 6)
CPU = torch.device("cpu")


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
    replay = FrameReplay(1000, SHAPE, STACK, 2, batch_size=64, device=CPU, seed=0)
    episodes = [episode_frames(rng, n) for n in (2, 7, 1, 12)]  # episodes shorter than the stack too
    live = fill(replay, episodes)
    assert len(replay) == len(live) == 22
    for _ in range(20):
        check_batch(replay, live)


def test_ring_wraparound_drops_only_overwritten_transitions() -> None:
    rng = np.random.default_rng(1)
    capacity = 50
    replay = FrameReplay(capacity, SHAPE, STACK, 2, batch_size=128, device=CPU, seed=1)
    episodes = [episode_frames(rng, n) for n in (9, 13, 20, 6, 17, 11)]
    live = fill(replay, episodes)  # 76 transitions, 82 frames: the ring wrapped
    assert (replay.transitions_written[0], replay.frames_written[0]) == (76, 82)
    # every live transition's frames are still in the ring; at most capacity transitions are live
    assert 0 < len(replay) <= capacity
    first = int(replay.first_live[0])
    for _ in range(20):
        check_batch(replay, live[first:])
    oldest_kept = 82 - capacity  # the transition just before the first live one needs a frame no longer held
    assert replay._oldest_frame(0, first) >= oldest_kept > replay._oldest_frame(0, first - 1)


def test_misuse_is_reported() -> None:
    replay = FrameReplay(10, SHAPE, STACK, 2, batch_size=4, device=CPU)
    with pytest.raises(RuntimeError, match="start_episode"):
        replay.add(np.zeros(SHAPE, np.uint8), np.zeros(2, np.float32), 0.0, False)
    with pytest.raises(RuntimeError, match="empty"):
        replay.sample()
    with pytest.raises(ValueError, match="raise its capacity"):
        FrameReplay(12, SHAPE, STACK, 2, batch_size=4, device=CPU, streams=3)


class NaiveStreams:
    """The reference: every transition with its full obs / next-obs stacks, built from each env's own frames, and
    the ids of the frames it uses, to know which ones a ring of ``capacity`` frames per stream still holds."""

    def __init__(self, streams: int, capacity: int) -> None:
        self.capacity = capacity
        self.episode: list[list[np.ndarray]] = [[] for _ in range(streams)]
        self.episode_ids: list[list[int]] = [[] for _ in range(streams)]
        self.frames_written = [0] * streams
        self.transitions: list[list[tuple]] = [[] for _ in range(streams)]

    def frame(self, s: int, frame: np.ndarray, new_episode: bool) -> None:
        if new_episode:
            self.episode[s], self.episode_ids[s] = [], []
        self.episode[s].append(frame)
        self.episode_ids[s].append(self.frames_written[s])
        self.frames_written[s] += 1

    def transition(self, s: int, action: np.ndarray, reward: float, terminated: bool) -> None:
        t = len(self.episode[s]) - 1
        ids = {self.episode_ids[s][max(t - k, 0)] for k in range(STACK + 1)}
        self.transitions[s].append((stacked(self.episode[s], t - 1), action, reward, stacked(self.episode[s], t),
                                    terminated, min(ids)))

    def live(self) -> dict[float, tuple]:
        out = {}
        for s, transitions in enumerate(self.transitions):
            oldest_kept = self.frames_written[s] - self.capacity
            for j, (obs, action, reward, next_obs, terminated, oldest) in enumerate(transitions):
                if j >= len(transitions) - self.capacity and oldest >= oldest_kept:
                    out[reward] = (obs, action, next_obs, terminated)
        return out


@pytest.mark.parametrize("seed", range(6))
def test_interleaved_streams_never_mix_envs_or_episodes(seed: int) -> None:
    """Random layouts: 1-3 envs, random episode lengths (shorter and longer than the stack), envs adding in random
    order, rings small enough to wrap several times; sampled stacks must equal naive stacking of the env's own
    episode, only live transitions may be sampled, and every live one can be."""
    rng = np.random.default_rng(seed)
    streams = int(rng.integers(1, 4))
    capacity = int(rng.integers(STACK + 2, 40)) * streams
    replay = FrameReplay(capacity, SHAPE, STACK, 2, batch_size=64, device=CPU, seed=seed, streams=streams)
    naive = NaiveStreams(streams, capacity // streams)
    remaining = [0] * streams  # transitions left in each env's episode
    reward = 0.0
    for _ in range(int(rng.integers(50, 400))):
        s = int(rng.integers(streams))
        if remaining[s] == 0:
            frame = rng.integers(0, 256, SHAPE, dtype=np.uint8)
            replay.start_episode(frame, stream=s)
            naive.frame(s, frame, new_episode=True)
            remaining[s] = int(rng.integers(1, 15))
        frame = rng.integers(0, 256, SHAPE, dtype=np.uint8)
        action = rng.uniform(-1, 1, 2).astype(np.float32)
        reward += 1.0  # a unique id per transition
        remaining[s] -= 1
        terminated = remaining[s] == 0 and bool(rng.integers(2))
        replay.add(frame, action, reward, terminated, stream=s)
        naive.frame(s, frame, new_episode=False)
        naive.transition(s, action, reward, terminated)
    live = naive.live()
    assert len(replay) == len(live)
    seen = set()
    for _ in range(60):
        batch = replay.sample()
        for i in range(replay.batch_size):
            key = float(batch.rewards[i, 0])
            assert key in live, "sampled a transition whose frames were overwritten"
            obs, action, next_obs, terminated = live[key]
            np.testing.assert_array_equal(batch.obs[i].numpy(), obs)
            np.testing.assert_array_equal(batch.next_obs[i].numpy(), next_obs)
            np.testing.assert_array_equal(batch.actions[i].numpy(), action)
            assert float(batch.terminated[i, 0]) == float(terminated)
            seen.add(key)
    assert seen == set(live)  # uniform over all streams: every live transition turns up


def test_state_dict_round_trip_samples_the_same_batches() -> None:
    rng = np.random.default_rng(7)
    a = FrameReplay(60, SHAPE, STACK, 2, batch_size=16, device=CPU, seed=2, streams=2)
    for t in range(70):
        s = t % 2
        if t % 23 < 2:
            a.start_episode(rng.integers(0, 256, SHAPE, dtype=np.uint8), stream=s)
        a.add(rng.integers(0, 256, SHAPE, dtype=np.uint8), rng.uniform(-1, 1, 2).astype(np.float32), t, False,
              stream=s)
    state, arrays = a.state_dict()
    b = FrameReplay(60, SHAPE, STACK, 2, batch_size=16, device=CPU, streams=2)
    b.load_state_dict(state, {k: v.copy() for k, v in arrays.items()})
    assert len(a) == len(b)
    for _ in range(5):
        x, y = a.sample(), b.sample()
        for u, v in zip(x, y, strict=True):
            assert torch.equal(u, v)
