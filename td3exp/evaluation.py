"""Evaluation episodes on the parallel envs: each env runs the next episode (its own fixed seed) when it finishes one,
and envs with no episode left are parked until the evaluation ends."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from td3exp.envs.errors import SimulatorUnavailable
from td3exp.envs.vector import UNAVAILABLE, ParallelEnvs


class Evaluation:
    """``run(seeds)`` plays one episode per seed on the evaluation side of ``envs`` and returns their native returns
    and lengths (in the order of ``seeds``, whichever env played them).  ``act(obs) -> actions`` maps the
    observations (K, C, H, W) of the K envs playing to their actions (K, A): one call per vector step.

    An episode that loses its simulator (CARLA's ``info["simulator_lost"]``) does not count its partial return: it
    is played again from its seed, and ``note`` says so.  ``stop_requested`` is checked every step; when it says
    yes, ``Evaluation.Stopped`` is raised (the envs are back in training mode)."""

    class Stopped(Exception):
        """A stop signal arrived during the evaluation."""

    def __init__(self, envs: ParallelEnvs, act: Callable[[np.ndarray], np.ndarray],
                 stop_requested: Callable[[], bool], note: Callable[[str], None] = print) -> None:
        self.envs, self.act, self.stop_requested, self.note = envs, act, stop_requested, note
        shape, dtype = envs.single_observation_space.shape, envs.single_observation_space.dtype
        action_shape = envs.single_action_space.shape
        assert shape is not None and action_shape is not None
        self.obs = np.zeros((envs.num_envs, *shape), dtype=dtype)
        self.action_shape = action_shape

    def run(self, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        self.envs.set_mode("eval")
        try:
            return self._run(seeds)
        finally:
            self.envs.set_mode("train")

    def _run(self, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        n = self.envs.num_envs
        returns, lengths = np.zeros(len(seeds)), np.zeros(len(seeds))
        self.seeds, self.next_episode = seeds, 0
        self.episode: list[int | None] = [None] * n  # the episode each env plays
        self.total, self.length = np.zeros(n), np.zeros(n, dtype=np.int64)
        self._start({i: None for i in range(n)})
        while any(e is not None for e in self.episode):
            if self.stop_requested():
                raise Evaluation.Stopped
            active = [i for i in range(n) if self.episode[i] is not None]
            actions = np.zeros((n, *self.action_shape), dtype=np.float32)
            actions[active] = self.act(self.obs[active])  # one call for the envs playing; parked ones step with zeros
            next_obs, _, terminated, truncated, infos = self.envs.step(actions)
            restart: dict[int, int | None] = {}
            for i in active:
                info = infos[i]
                if UNAVAILABLE in info:
                    raise SimulatorUnavailable(info[UNAVAILABLE])
                if info.get("simulator_lost"):
                    self.note(f"td3exp: evaluation episode {self.episode[i]} lost its simulator; playing it again")
                    restart[i] = self.episode[i]
                    continue
                self.total[i] += info["native_reward"]
                self.length[i] += 1
                if terminated[i] or truncated[i]:
                    episode = self.episode[i]
                    assert episode is not None
                    returns[episode], lengths[episode] = self.total[i], self.length[i]
                    restart[i] = None  # the next episode, if any is left
                else:
                    self.obs[i] = next_obs[i]
            if restart:
                self._start(restart)
        return returns, lengths

    def _start(self, envs: dict[int, int | None]) -> None:
        """Reset each env of ``envs`` to its given episode, or (None) to the next one left; park the rest."""
        n = self.envs.num_envs
        for i, episode in envs.items():
            if episode is None and self.next_episode < len(self.seeds):
                episode, self.next_episode = self.next_episode, self.next_episode + 1
            self.episode[i] = episode
            self.total[i], self.length[i] = 0.0, 0
        playing = np.array([i in envs and self.episode[i] is not None for i in range(n)])
        parked = np.array([i in envs and self.episode[i] is None for i in range(n)])
        if playing.any():
            seeds = [self.seeds[e] if playing[i] and (e := self.episode[i]) is not None else None for i in range(n)]
            obs, infos = self.envs.reset(seeds, playing)
            if (message := next((info[UNAVAILABLE] for info in infos if UNAVAILABLE in info), None)) is not None:
                raise SimulatorUnavailable(message)
            self.obs[playing] = obs[playing]
        if parked.any():
            self.envs.reset([None] * n, parked, idle=True)
